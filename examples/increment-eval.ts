/**
 * Used by the Gemma increment example (`gemma-increment.ts`): prompting a base
 * model the way the tuned model will be prompted, and scoring answers by exact match,
 * overall and per kind of input (the `kind` field of the increment data).
 */
import { readFileSync } from "node:fs";
import type { Example } from "tunekit";
import {
  cleanResponse,
  inferencePrompt,
  type LocalModel,
  type TemplateDescriptor,
  tokenizerFromModel,
} from "tunekit/local";

/** Greedy answers of an untuned `model`, prompted exactly as tuning will prompt it. */
export function baseModelAnswerer(model: LocalModel, template: TemplateDescriptor) {
  return async (input: string): Promise<string> => {
    const prompt = inferencePrompt(tokenizerFromModel(model), template, input);
    const { text } = await model.generate(prompt.promptIds, {
      maxNewTokens: 24,
      eosTokenIds: prompt.eosTokenIds,
      stop: prompt.stop,
    });
    return cleanResponse(template, text);
  };
}

/**
 * Exact-match accuracy of `answer` over `examples`, and the first `show` answers as lines.
 * With `firstLine`, only an answer's first line is scored (a base model that answers and then
 * rambles on still counts).
 */
export async function exactMatch(
  answer: (input: string) => Promise<string>,
  examples: readonly Example[],
  options: { show: number; firstLine?: boolean; kindOf?: (input: string) => string },
) {
  let correct = 0;
  const shown: string[] = [];
  const byKind: Record<string, { correct: number; total: number }> = {};
  for (const [i, { input, output }] of examples.entries()) {
    let got = (await answer(input)).trim();
    if (options.firstLine) got = got.split("\n")[0]?.trim() ?? "";
    const ok = got === output;
    if (ok) correct++;
    const kind = options.kindOf?.(input) ?? "all";
    const tally = byKind[kind] ?? { correct: 0, total: 0 };
    byKind[kind] = tally;
    tally.total++;
    if (ok) tally.correct++;
    if (i < options.show) {
      const display = got.length > 40 ? `${got.slice(0, 40)}…` : got;
      shown.push(
        `  ${ok ? "✓" : "✗"} ${input} → ${display.replace(/\n/g, "⏎") || "(nothing)"}${ok ? "" : `   (expected ${output})`}`,
      );
    }
  }
  return { accuracy: correct / examples.length, correct, shown, byKind };
}

/** The `kind` of each row of a JSONL file of the increment data, by input ("other" if none). */
export function readKinds(path: string): (input: string) => string {
  const kinds = new Map<string, string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const row = JSON.parse(line) as { text_input?: string; kind?: string };
    if (row.text_input !== undefined && row.kind !== undefined) kinds.set(row.text_input, row.kind);
  }
  return (input) => kinds.get(input) ?? "other";
}

type Tally = Record<string, { correct: number; total: number }>;

/** `  words-carry   4/15 → 14/15` per kind, sorted by kind. */
export function kindLines(before: Tally, after: Tally): string[] {
  const kinds = Object.keys(after).sort();
  const width = Math.max(...kinds.map((k) => k.length));
  const cell = (t: Tally, k: string) => `${t[k]?.correct ?? 0}/${t[k]?.total ?? 0}`;
  return kinds.map(
    (k) => `  ${k.padEnd(width)}  ${cell(before, k).padStart(7)} → ${cell(after, k)}`,
  );
}
