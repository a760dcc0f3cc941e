/**
 * The Gemini API's inline training data, built in one place so that validation measures
 * exactly the bytes the Gemini client sends.
 */
import { InvalidDatasetError } from "../errors.js";
import type { Example } from "./example.js";

/** One `TuningExample` as sent in `tuningTask.trainingData.examples.examples[]`. */
export interface GeminiExample {
  textInput: string;
  output: string;
}

/** Placed between the instruction and the input when both are present. */
export const GEMINI_INSTRUCTION_SEPARATOR = "\n\n";

/**
 * The text a model sees for an example when the backend has no system field (Gemini
 * tuning has none): `instruction + "\n\n" + input`; just the instruction when the input
 * is empty; just the input when there is no instruction. Use the same function at
 * inference so production prompts match training.
 *
 * @example
 * ```ts
 * foldInstruction({ instruction: "Answer in French.", input: "Hello", output: "Bonjour" });
 * // "Answer in French.\n\nHello"
 * ```
 */
export function foldInstruction(example: Pick<Example, "input" | "instruction">): string {
  const { instruction, input } = example;
  if (instruction === undefined || instruction.length === 0) return input;
  if (input.length === 0) return instruction;
  return instruction + GEMINI_INSTRUCTION_SEPARATOR + input;
}

/**
 * The examples in the Gemini wire shape, instructions folded into `textInput`.
 * The Gemini client sends exactly this array as `trainingData.examples.examples`.
 */
export function toGeminiExamples(examples: Iterable<Example>): GeminiExample[] {
  const wire: GeminiExample[] = [];
  let index = 0;
  for (const example of examples) {
    // Never send a conversation cut down to its last turn (the profile reports it first).
    if (example.history !== undefined && example.history.length > 0) {
      throw new InvalidDatasetError([
        {
          position: { kind: "index", value: index },
          field: "messages",
          reason: "a multi-turn conversation: the Gemini API takes single turns only",
          severity: "error",
        },
      ]);
    }
    index++;
    wire.push({ textInput: foldInstruction(example), output: example.output });
  }
  return wire;
}

/** Bytes of `{"textInput":"","output":""}` plus the comma that separates examples. */
const ENVELOPE_BYTES = '{"textInput":"","output":""},'.length;
/** A UTF-16 unit serialises to at most 6 UTF-8 bytes in JSON (`\uXXXX`). */
const MAX_BYTES_PER_UNIT = 6;

/**
 * UTF-8 bytes `JSON.stringify` gives `text`, without the surrounding quotes: `"` and `\\`
 * take 2, `\b \f \n \r \t` take 2, other control characters and lone surrogates take 6
 * (`\uXXXX`), a surrogate pair takes 4, and other units take 1–3 as in UTF-8.
 */
function jsonStringBytes(text: string): number {
  let bytes = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) {
      if (unit >= 0x20) bytes += unit === 0x22 || unit === 0x5c ? 2 : 1;
      else bytes += unit === 8 || unit === 9 || unit === 10 || unit === 12 || unit === 13 ? 2 : 6;
    } else if (unit < 0x800) {
      bytes += 2;
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      const next = i + 1 < length ? text.charCodeAt(i + 1) : 0;
      if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 6;
      }
    } else {
      bytes += 3;
    }
  }
  return bytes;
}

/** `{"textInput":` + `,"output":` + `}` + four quotes. */
const EXAMPLE_JSON_BYTES = '{"textInput":"","output":""}'.length;

/**
 * UTF-8 byte length of `JSON.stringify(toGeminiExamples(examples))`, the inline payload
 * the Gemini client sends, computed without building it.
 */
export function geminiPayloadBytes(examples: Iterable<Example>): number {
  let bytes = 1; // "["
  let count = 0;
  for (const example of examples) {
    bytes +=
      EXAMPLE_JSON_BYTES +
      jsonStringBytes(example.instruction ? foldInstruction(example) : example.input) +
      jsonStringBytes(example.output);
    count++;
  }
  return bytes + Math.max(count - 1, 0) + 1; // commas and "]"
}

/**
 * A cheap lower bound of `geminiPayloadBytes`: every UTF-16 unit serialises to at least
 * one byte, so the bound is the string lengths plus the JSON around them.
 */
export function geminiPayloadLowerBound(examples: readonly Example[]): number {
  let bound = examples.length === 0 ? 2 : 1;
  for (let i = 0; i < examples.length; i++) {
    const example = examples[i] as Example;
    const instruction = example.instruction;
    bound +=
      ENVELOPE_BYTES +
      example.input.length +
      example.output.length +
      (instruction === undefined || instruction.length === 0
        ? 0
        : example.input.length === 0
          ? instruction.length
          : instruction.length + GEMINI_INSTRUCTION_SEPARATOR.length);
  }
  return bound;
}

/**
 * A cheap upper bound of `geminiPayloadBytes`, computed from string lengths only. Stops
 * adding once the bound passes `stopAbove`, so callers serialise only when it might matter.
 */
export function geminiPayloadUpperBound(examples: readonly Example[], stopAbove: number): number {
  let bound = 2;
  for (let i = 0; i < examples.length && bound <= stopAbove; i++) {
    const example = examples[i] as Example;
    const units =
      example.input.length +
      example.output.length +
      (example.instruction === undefined
        ? 0
        : example.instruction.length + GEMINI_INSTRUCTION_SEPARATOR.length);
    bound += ENVELOPE_BYTES + MAX_BYTES_PER_UNIT * units;
  }
  return bound;
}
