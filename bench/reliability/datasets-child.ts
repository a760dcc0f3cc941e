/**
 * Child half of the dataset fuzz (see isolated-runner.ts): loads each case with the built
 * package. An error counts as typed only when it is the tunekit error the CLI maps to
 * "invalid input" (exit 3): `invalid_dataset` or `invalid_option`.
 *
 *   node --import tsx bench/reliability/datasets-child.ts <cases.json> <start index>
 */
import { Dataset } from "tunekit";
import type { DatasetCase } from "./datasets-corpus.js";
import { runCases } from "./isolated-child.js";

await runCases<DatasetCase>(
  async ({ file, options }) => {
    await Dataset.load(file, options);
  },
  ["invalid_dataset", "invalid_option"],
);
