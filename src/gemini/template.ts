/**
 * How the training preamble travels with a remote tuned model.
 *
 * Gemini tuning has no system field: tunekit folds each example's instruction into its
 * `textInput` (`instruction + "\n\n" + input`, see `foldInstruction`). A tuned model only
 * answers well when production prompts are built the same way, so the instruction must be
 * known at inference time — on any machine, long after the process that tuned it exited.
 *
 * **Decision: the template is stored server-side, in the tuned model's `description`,** as
 * a last line `tunekit-template: {"v":1,"instruction":"…"}` (one line of JSON, newlines
 * escaped). Whoever can read the model can read its template; nothing depends on a local
 * file. `TunedModelInfo.description` shows the user's own text without that line,
 * `TunedModelInfo.template` holds the parsed template, and `updateModel({ description })`
 * keeps the line unless a new `template` is given.
 *
 * Only a template shared by every example can be stored: when instructions differ from one
 * example to the next, none is stored (the job logs a warning) and callers pass the
 * instruction themselves (`generate(input, { instruction })`). Anyone can also override or
 * bypass the stored template per call (`{ template: null }` sends the input verbatim).
 */

import type { Example } from "../core/dataset/example.js";
import { foldInstruction } from "../core/dataset/gemini-wire.js";
import type { PromptTemplate } from "../core/types.js";

/** The prefix of the description line that carries the template. */
export const TEMPLATE_MARKER = "tunekit-template:";

/** The `kind` of templates made by this backend: instruction folded into the input. */
export const GEMINI_TEMPLATE_KIND = "gemini-folded";

/** Templates longer than this (as JSON) are not stored in the description. */
export const MAX_STORED_TEMPLATE_CHARS = 8_000;

/**
 * The template shared by every example, or `undefined` when there is no instruction.
 * `"mixed"` when examples carry different instructions (nothing can be stored then).
 */
export function templateFromExamples(
  examples: readonly Example[],
): PromptTemplate | "mixed" | undefined {
  let instruction: string | undefined;
  let first = true;
  for (const example of examples) {
    const current = example.instruction || undefined;
    if (first) {
      instruction = current;
      first = false;
    } else if (current !== instruction) {
      return "mixed";
    }
  }
  return instruction === undefined ? undefined : { instruction, kind: GEMINI_TEMPLATE_KIND };
}

/** The line stored for `template`, or undefined when it is empty or too long. */
export function templateLine(template: PromptTemplate | undefined): string | undefined {
  if (!template?.instruction) return undefined;
  const line = TEMPLATE_MARKER + JSON.stringify({ v: 1, instruction: template.instruction });
  return line.length > MAX_STORED_TEMPLATE_CHARS ? undefined : line;
}

/** Joins the user's description and the template line (either may be absent). */
export function encodeDescription(
  description: string | undefined,
  template: PromptTemplate | undefined,
): string | undefined {
  const line = templateLine(template);
  const text = description?.trimEnd() || undefined;
  if (line === undefined) return text;
  return text === undefined ? line : `${text}\n\n${line}`;
}

/**
 * Splits a stored description into the user's text and the template. `kind` labels the
 * template (each backend that stores templates this way passes its own).
 */
export function decodeDescription(
  stored: string | undefined,
  kind: string = GEMINI_TEMPLATE_KIND,
): {
  description: string | undefined;
  template: PromptTemplate | undefined;
} {
  if (!stored) return { description: stored || undefined, template: undefined };
  const at = stored.startsWith(TEMPLATE_MARKER)
    ? 0
    : stored.lastIndexOf(`\n${TEMPLATE_MARKER}`) + 1;
  if (at < 0 || (at === 0 && !stored.startsWith(TEMPLATE_MARKER))) {
    return { description: stored, template: undefined };
  }
  const line = stored.slice(at).split("\n")[0] ?? "";
  let template: PromptTemplate | undefined;
  try {
    const parsed = JSON.parse(line.slice(TEMPLATE_MARKER.length)) as { instruction?: unknown };
    if (typeof parsed.instruction === "string") {
      template = { instruction: parsed.instruction, kind };
    }
  } catch {
    return { description: stored, template: undefined };
  }
  const rest = stored.slice(0, at).trimEnd();
  return { description: rest === "" ? undefined : rest, template };
}

/** The prompt sent for `input`: the same folding as training (`foldInstruction`). */
export function renderPrompt(template: PromptTemplate | undefined, input: string): string {
  const instruction = template?.instruction;
  return instruction === undefined ? input : foldInstruction({ input, instruction });
}
