/**
 * Child half of the dataset fuzz (see isolated-runner.ts): loads each case with the built
 * package and reports how it ended. An error counts as typed only when it is the tunekit
 * error the CLI maps to "invalid input" (exit 3): `invalid_dataset` or `invalid_option`.
 *
 *   tsx bench/reliability/datasets-child.ts <cases.json> <start index>
 */
import { readFileSync } from "node:fs";
import { Dataset, isTunekitError } from "tunekit";
import type { DatasetCase } from "./datasets-corpus.js";

const [casesFile, startText] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile as string, "utf8")) as DatasetCase[];
const out = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

for (let i = Number(startText ?? 0); i < cases.length; i++) {
  const { file, options } = cases[i] as DatasetCase;
  out({ start: i });
  const started = performance.now();
  try {
    await Dataset.load(file, options);
    out({ i, outcome: "ok", ms: performance.now() - started });
  } catch (error) {
    const typed =
      isTunekitError(error) &&
      (error.code === "invalid_dataset" || error.code === "invalid_option");
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
