/**
 * How the training preamble travels with a Gemini tuned model.
 *
 * Gemini tuning has no system field: tunekit folds each example's instruction into its
 * `textInput` (`instruction + "\n\n" + input`, see `foldInstruction`). The shared instruction
 * is stored in the model's `description` (see `remote/description-metadata.ts`) and folded the
 * same way by `generate()`, so production prompts match training on any machine.
 *
 * Only a template shared by every example can be stored: when instructions differ from one
 * example to the next, none is stored (the job logs a warning) and callers pass the
 * instruction themselves (`generate(input, { instruction })`). Anyone can also override or
 * bypass the stored template per call (`{ template: null }` sends the input verbatim).
 */
import type { Example } from "../core/dataset/example.js";
import { foldInstruction } from "../core/dataset/gemini-wire.js";
import type { PromptTemplate } from "../core/types.js";
import {
  decodeDescription as decodeStored,
  templateFromExamples as sharedTemplate,
} from "../remote/description-metadata.js";

export {
  encodeDescription,
  MAX_STORED_TEMPLATE_CHARS,
  TEMPLATE_MARKER,
} from "../remote/description-metadata.js";

/** The `kind` of templates made by this backend: instruction folded into the input. */
export const GEMINI_TEMPLATE_KIND = "gemini-folded";

/** The template shared by every example (kind `gemini-folded`), `undefined` or `"mixed"`. */
export function templateFromExamples(
  examples: readonly Example[],
): PromptTemplate | "mixed" | undefined {
  return sharedTemplate(examples, GEMINI_TEMPLATE_KIND);
}

/** Splits a stored description into the user's text, the template and the request id. */
export function decodeDescription(
  stored: string | undefined,
  kind: string = GEMINI_TEMPLATE_KIND,
): ReturnType<typeof decodeStored> {
  return decodeStored(stored, kind);
}

/** The prompt sent for `input`: the same folding as training (`foldInstruction`). */
export function renderPrompt(template: PromptTemplate | undefined, input: string): string {
  const instruction = template?.instruction;
  return instruction === undefined ? input : foldInstruction({ input, instruction });
}
