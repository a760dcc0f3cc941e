/**
 * Child half of the model-file fuzz (see isolated-runner.ts): loads each damaged model with
 * the built package and, when it loads, generates two tokens. A `model_load` error (or an
 * `invalid_option` from generation) is the typed outcome; any other error is reported as
 * untyped; a dead process is a crash.
 *
 *   node --import tsx bench/reliability/model-files-child.ts <cases.json> <start index>
 */
import { loadModel } from "tunekit/local";
import { runCases } from "./isolated-child.js";
import type { ModelCase } from "./model-files-corpus.js";

await runCases<ModelCase>(
  async ({ path }) => {
    const model = await loadModel(path);
    try {
      await model.generate([1, 2, 3], { maxNewTokens: 2 });
    } finally {
      model.dispose();
    }
  },
  ["model_load", "invalid_option"],
);
