/**
 * The child side of isolated-runner.ts: reads the case list, runs every case from the start
 * index and prints the protocol lines (`{"start": i}` before a case, its result after). An
 * error is "typed" only when it is a tunekit error with one of `typedCodes`.
 */
import { readFileSync } from "node:fs";
import { isTunekitError } from "tunekit";

export async function runCases<C>(
  run: (testCase: C) => Promise<void>,
  typedCodes: readonly string[],
): Promise<void> {
  const [casesFile, startText] = process.argv.slice(2);
  const cases = JSON.parse(readFileSync(casesFile as string, "utf8")) as C[];
  const out = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
  for (let i = Number(startText ?? 0); i < cases.length; i++) {
    out({ start: i });
    const started = performance.now();
    try {
      await run(cases[i] as C);
      out({ i, outcome: "ok", ms: performance.now() - started });
    } catch (error) {
      const typed = isTunekitError(error) && typedCodes.includes(error.code);
      out({
        i,
        outcome: typed ? "typed" : "untyped",
        code: (error as { code?: string }).code,
        name: (error as Error).name,
        message: String((error as Error).message).slice(0, 300),
        ms: performance.now() - started,
      });
    }
  }
}
