/** Evaluation reports for people: the metric table and the markdown report's worst examples. */
import { describe, expect, it } from "vitest";
import { Dataset } from "../../../src/core/dataset/dataset.js";
import {
  type EvaluationReport,
  evaluate,
  evaluationMarkdown,
  metricRows,
  textTable,
  worstExamples,
} from "../../../src/core/evaluate/index.js";
import type { TunedModel } from "../../../src/core/types.js";

const model = (name: string, answers: Record<string, string>): TunedModel => ({
  name,
  baseModel: "none",
  info: () => ({ name, baseModel: "none", state: "active" }),
  generate: async (input) => answers[input] ?? "",
});

const data = Dataset.from([
  { input: "9", output: "10", kind: "carry" },
  { input: "41", output: "42", kind: "plain" },
  { input: "a|b", output: "x\ny", kind: "plain" },
]);

async function reports(): Promise<[EvaluationReport, EvaluationReport]> {
  const before = await evaluate(model("base", {}), data, { groupBy: "kind" });
  const after = await evaluate(model("tuned", { "9": "10", "41": "42." }), data, {
    groupBy: "kind",
    scorers: { short: ({ output }) => output.length < 3 },
  });
  return [before, after];
}

describe("evaluation reports", () => {
  it("lists wrong answers first, in dataset order among equals", async () => {
    const [, after] = await reports();
    expect(worstExamples(after, 2).map((r) => r.input)).toEqual(["a|b", "41"]);
    expect(worstExamples(after, 0)).toEqual([]);
  });

  it("puts baseline and model side by side, built-in metrics first", async () => {
    const [before, after] = await reports();
    const table = textTable([["", "baseline", "model"], ...metricRows([before, after])]);
    expect(table.split("\n")).toEqual([
      "                 baseline  model",
      "exactMatch           0.0%  33.3%",
      "normalizedMatch      0.0%  66.7%",
      "contains             0.0%  66.7%",
      "short                   —  66.7%",
    ]);
  });

  it("writes markdown with slices, before → after, and escaped worst examples", async () => {
    const [before, after] = await reports();
    const markdown = evaluationMarkdown(after, { baseline: before, worst: 2, dataset: "d.jsonl" });
    expect(markdown).toContain("# Evaluation of tuned");
    expect(markdown).toContain("3 examples from d.jsonl");
    expect(markdown).toContain("| metric | baseline: base | tuned |");
    expect(markdown).toContain("| carry | 1 | 0.0% → 100.0% |");
    expect(markdown).toContain("## Worst 2 examples");
    // A pipe and a newline in a cell cannot break the table.
    expect(markdown).toContain("| index 2 | plain | a\\|b | x⏎y |   |   |");
  });
});
