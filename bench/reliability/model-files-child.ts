/**
 * Child half of the model-file fuzz (see isolated-runner.ts): loads each damaged model with
 * the built package and, when it loads, generates two tokens. A `model_load` error (or an
 * `invalid_option` from generation) is the typed outcome; any other error is reported as
 * untyped; a dead process is a crash.
 *
 *   tsx bench/reliability/model-files-child.ts <cases.json> <start index>
 */
import { readFileSync } from "node:fs";
import { isTunekitError } from "tunekit";
import { loadModel } from "tunekit/local";
import type { ModelCase } from "./model-files-corpus.js";

const [casesFile, startText] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile as string, "utf8")) as ModelCase[];
const out = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

for (let i = Number(startText ?? 0); i < cases.length; i++) {
  const { path } = cases[i] as ModelCase;
  out({ start: i });
  const started = performance.now();
  try {
    const model = await loadModel(path);
    try {
      await model.generate([1, 2, 3], { maxNewTokens: 2 });
    } finally {
      model.dispose();
    }
    out({ i, outcome: "ok", ms: performance.now() - started });
  } catch (error) {
    const typed =
      isTunekitError(error) && (error.code === "model_load" || error.code === "invalid_option");
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
