/**
 * The built-in generation metrics of `evaluate`: exact, normalised and contained matches of a
 * generated answer against the expected output. Each scores 1 (match) or 0.
 */

/** The names of the built-in generation metrics. */
export const GENERATION_METRICS = ["exactMatch", "normalizedMatch", "contains"] as const;
export type GenerationMetric = (typeof GENERATION_METRICS)[number];

/**
 * The text `normalizedMatch` and `contains` compare: Unicode NFKC, lower case, punctuation and
 * symbols removed, whitespace runs collapsed to one space, trimmed. So `"Ten."` matches `"ten"`
 * and `"51,799,000"` matches `"51799000"`.
 *
 * @example
 * ```ts
 * normalizeAnswer("  The  Answer: 42! "); // "the answer 42"
 * ```
 */
export function normalizeAnswer(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, "")
    .replace(/\s+/gu, " ")
    .trim();
}

/** 1 when `output` and `expected` are equal after trimming surrounding whitespace, else 0. */
export function exactMatch(output: string, expected: string): number {
  return output.trim() === expected.trim() ? 1 : 0;
}

/** 1 when the {@link normalizeAnswer} forms are equal, else 0. */
export function normalizedMatch(output: string, expected: string): number {
  return normalizeAnswer(output) === normalizeAnswer(expected) ? 1 : 0;
}

/**
 * 1 when the normalised `expected` occurs in the normalised `output` on word boundaries
 * (`"42"` is in `"the answer is 42"` but not in `"420"`), else 0. An empty expected output
 * is contained only in an empty answer.
 */
export function contains(output: string, expected: string): number {
  const hay = normalizeAnswer(output);
  const needle = normalizeAnswer(expected);
  if (needle === "") return hay === "" ? 1 : 0;
  return ` ${hay} `.includes(` ${needle} `) ? 1 : 0;
}

/** The built-in metric functions by name. */
export const METRIC_FUNCTIONS: Readonly<
  Record<GenerationMetric, (output: string, expected: string) => number>
> = { exactMatch, normalizedMatch, contains };
