/**
 * Used by the Gemma increment example (`gemma-increment.ts`): prompting a base
 * model the way the tuned model will be prompted, and scoring answers by exact match.
 */
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
  options: { show: number; firstLine?: boolean },
) {
  let correct = 0;
  const shown: string[] = [];
  for (const [i, { input, output }] of examples.entries()) {
    let got = (await answer(input)).trim();
    if (options.firstLine) got = got.split("\n")[0]?.trim() ?? "";
    const ok = got === output;
    if (ok) correct++;
    if (i < options.show) {
      const display = got.length > 40 ? `${got.slice(0, 40)}…` : got;
      shown.push(
        `  ${ok ? "✓" : "✗"} ${input} → ${display.replace(/\n/g, "⏎") || "(nothing)"}${ok ? "" : `   (expected ${output})`}`,
      );
    }
  }
  return { accuracy: correct / examples.length, correct, shown };
}
