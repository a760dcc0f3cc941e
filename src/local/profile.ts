/**
 * The `local` dataset limit profile: token lengths against `maxLength`, checked before
 * training starts, with every over-long example reported at its dataset position.
 */
import type { Example } from "../core/dataset/example.js";
import type { LimitProfile } from "../core/dataset/profiles.js";
import { InvalidOptionError, isTunekitError } from "../core/errors.js";
import type { TemplateDescriptor } from "./prompt/template.js";
import {
  appendedEosId,
  type ExampleLayout,
  endTokenIds,
  layoutExample,
  noResponseReason,
  type SequenceTokenizer,
  type TrainOn,
} from "./sequences.js";

/** Options of {@link createLocalProfile}. */
export interface LocalProfileOptions {
  tokenizer: SequenceTokenizer;
  template: TemplateDescriptor;
  /** Longest sequence, prompt + response + end token. */
  maxLength: number;
  /** Report over-long examples as errors instead of warnings (no truncation allowed). @default false */
  strict?: boolean;
  /** Which assistant turns of a conversation are trained (as in training). @default "all-turns" */
  trainOn?: TrainOn;
}

const format = (n: number) => n.toLocaleString("en-US");

/**
 * A profile for `dataset.check(profile)` / `dataset.validate(profile)`:
 * - an example whose prompt alone reaches `maxLength` is an **error** (nothing to train);
 * - an example longer than `maxLength` is a **warning** naming its length and the response
 *   tokens truncation will cut (an error with `strict`), plus one dataset-level summary;
 * - an output containing the template's end text is a warning (the model would learn to
 *   stop there);
 * - a template that cannot render an example is an error at that example.
 *
 * @example
 * ```ts
 * const issues = dataset.check(
 *   createLocalProfile({ tokenizer: tokenizerFromModel(model), template, maxLength: 512 }),
 * );
 * ```
 */
export function createLocalProfile(options: LocalProfileOptions): LimitProfile {
  const { tokenizer, template, maxLength } = options;
  if (!Number.isSafeInteger(maxLength) || maxLength < 2) {
    throw new InvalidOptionError("maxLength", `maxLength must be an integer ≥ 2, got ${maxLength}`);
  }
  const overSeverity = options.strict ? "error" : "warning";
  return {
    name: "local",
    validate(examples: readonly Example[], context) {
      const ends = {
        endIds: new Set(endTokenIds(tokenizer, template)),
        eosId: appendedEosId(tokenizer, template),
      };
      let over = 0;
      let lost = 0;
      let longest = 0;
      let noRoom = 0;
      let longestPrompt = 0;
      for (let i = 0; i < examples.length && !context.full; i++) {
        const example = examples[i] as Example;
        let layout: ExampleLayout;
        try {
          layout = layoutExample(example, {
            tokenizer,
            template,
            maxLength,
            ends,
            ...(options.trainOn ? { trainOn: options.trainOn } : {}),
          });
        } catch (error) {
          if (!isTunekitError(error)) throw error;
          context.example(
            i,
            undefined,
            `the prompt template cannot render this example: ${error.message}`,
          );
          continue;
        }
        const prompt = layout.promptTokens;
        const total = layout.tokens;
        longest = Math.max(longest, total);
        const outputs = [
          example.output,
          ...(example.history ?? [])
            .filter((turn) => turn.role === "assistant")
            .map((turn) => turn.content),
        ];
        if (
          template.endText !== undefined &&
          outputs.some((o) => o.includes(template.endText as string))
        ) {
          context.example(
            i,
            "output",
            `output contains the end-of-turn text ${JSON.stringify(template.endText)}; the model would learn to stop there`,
            "warning",
          );
        }
        longestPrompt = Math.max(longestPrompt, prompt);
        if (layout.noRoom) {
          noRoom++;
          context.example(i, "input", noResponseReason(prompt, maxLength));
          continue;
        }
        if (layout.droppedTurns > 0) {
          context.example(
            i,
            "messages",
            `conversation over maxLength ${format(maxLength)}: its ${format(layout.droppedTurns)} ` +
              "oldest turns are dropped to fit",
            overSeverity,
          );
        }
        if (total > maxLength) {
          over++;
          lost += total - maxLength;
          context.example(
            i,
            "output",
            `example is ${format(total)} tokens (prompt ${format(prompt)} + response ` +
              `${format(total - prompt)}); maxLength ${format(maxLength)} cuts the last ` +
              `${format(total - maxLength)} response tokens, end token included`,
            overSeverity,
          );
        }
      }
      if (noRoom > 0) {
        // One line with the number that fixes it, whatever the list of rows shows.
        context.dataset(
          `${format(noRoom)}${context.full ? "+" : ""} example${noRoom === 1 ? " has" : "s have"} a prompt of ` +
            `maxLength ${format(maxLength)} tokens or more, so none of their response is trained; the ` +
            `longest prompt ${context.full ? "seen " : ""}is ${format(longestPrompt)} tokens: raise maxLength ` +
            `above it (at least ${format(longestPrompt + 2)} keeps a response token and the end token)`,
        );
      }
      if (over > 0) {
        context.dataset(
          `${format(over)} example${over === 1 ? "" : "s"} exceed maxLength ${format(maxLength)} ` +
            `(longest ${format(longest)} tokens, ${format(lost)} response tokens would be cut): ` +
            "raise maxLength or shorten them",
          overSeverity,
        );
      }
    },
  };
}
