/**
 * Response loss of a local model: the cross-entropy of each expected response, prompted and
 * tokenized exactly as in training (`buildSequences`), from one forward pass per example.
 * The same quantity as the trainer's validation loss, so evaluation and training agree.
 */
import type { Example } from "../core/dataset/example.js";
import { throwIfAborted } from "../core/errors.js";
import type { ResponseLoss, ResponseLossOptions } from "../core/evaluate/evaluate.js";
import type { LocalModel } from "./model.js";
import type { TemplateDescriptor } from "./prompt/template.js";
import { buildSequences, IGNORE_INDEX, tokenizerFromModel } from "./sequences.js";

/** `-log softmax(row)[target]`, computed stably in f64. */
function negativeLogLikelihood(row: Float32Array, target: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < row.length; i++) if ((row[i] as number) > max) max = row[i] as number;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp((row[i] as number) - max);
  return max + Math.log(sum) - (row[target] as number);
}

/**
 * Σ NLL of every example's response tokens (end token included) under `model`, with the
 * prompt rendered by `template`. Sequences longer than the model's context are truncated as
 * training truncates them.
 */
export async function responseLosses(
  model: LocalModel,
  template: TemplateDescriptor,
  examples: readonly Example[],
  options: ResponseLossOptions = {},
): Promise<ResponseLoss[]> {
  const { sequences } = buildSequences(examples, {
    tokenizer: tokenizerFromModel(model),
    template,
    maxLength: model.config.maxPositionEmbeddings,
  });
  const out: ResponseLoss[] = [];
  for (const sequence of sequences) {
    throwIfAborted(options.signal);
    const logits = await model.logits(sequence.inputIds);
    let sum = 0;
    let tokens = 0;
    // The logits at position t predict token t + 1.
    for (let t = 1; t < sequence.labels.length; t++) {
      const target = sequence.labels[t] as number;
      if (target === IGNORE_INDEX) continue;
      sum += negativeLogLikelihood(logits.row(t - 1), target);
      tokens++;
    }
    out.push({ sum, tokens });
    options.onExample?.(sequence.index);
  }
  return out;
}
