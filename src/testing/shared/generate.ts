/**
 * Deterministic answers of the fake for `generateContent` / `streamGenerateContent`.
 * @internal
 */

/** What a fake tuned model knows when it answers (passed to a custom `respond`). */
export interface FakeResponderContext {
  /** `tunedModels/{id}`. */
  name: string;
  baseModel: string;
  /** The training examples, as sent on create. */
  examples: ReadonlyArray<{ textInput: string; output: string }>;
}

/** Answers inputs not seen in training. */
export type FakeResponder = (input: string, model: FakeResponderContext) => string;

/** The default answer to an input not seen in training: `"<name> says: <input>"`. */
export const defaultResponder: FakeResponder = (input, model) => `${model.name} says: ${input}`;

/** Rough token count (4 characters a token), enough for `usageMetadata`. */
export function fakeTokenCount(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** Split `text` into at most `parts` chunks at word boundaries (for streaming). */
export function chunkText(text: string, parts = 3): string[] {
  const words = text.split(/(?<=\s)/);
  if (words.length <= 1 || parts <= 1) return [text];
  const size = Math.ceil(words.length / parts);
  const chunks: string[] = [];
  for (let index = 0; index < words.length; index += size) {
    chunks.push(words.slice(index, index + size).join(""));
  }
  return chunks;
}
