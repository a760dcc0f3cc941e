/**
 * Limit profiles: the rules a backend imposes on a dataset. A profile is an object that
 * implements `LimitProfile`, so a backend can bring its own (the token-based `local`
 * profile lands with the local backend and plugs in here).
 */
import type { DatasetIssue } from "../errors.js";
import { InvalidOptionError } from "../errors.js";
import type { Example } from "./example.js";
import {
  foldInstruction,
  GEMINI_INSTRUCTION_SEPARATOR,
  geminiPayloadBytes,
  geminiPayloadLowerBound,
  geminiPayloadUpperBound,
} from "./gemini-wire.js";
import { countCodePoints, exceedsCodePoints } from "./text.js";

/** Where a profile reports what it finds. Example problems are positioned for it. */
export interface ProfileContext {
  /** True once a problem was dropped because the issue cap was reached; a profile may stop. */
  readonly full: boolean;
  /** A problem with example `index` (0-based in `examples`); its source position is added. */
  example(
    index: number,
    field: string | undefined,
    reason: string,
    severity?: DatasetIssue["severity"],
  ): void;
  /** A problem with the dataset as a whole (never dropped by the cap). */
  dataset(reason: string, severity?: DatasetIssue["severity"]): void;
}

/**
 * The limits of one backend.
 *
 * @example
 * ```ts
 * const shortAnswers: LimitProfile = {
 *   name: "short-answers",
 *   validate(examples, context) {
 *     examples.forEach((example, i) => {
 *       if (example.output.length > 200) context.example(i, "output", "answer over 200 characters");
 *     });
 *   },
 * };
 * dataset.check(shortAnswers);
 * ```
 */
export interface LimitProfile {
  readonly name: string;
  /** Reports every problem of `examples` to `context`. Must not modify the examples. */
  validate(examples: readonly Example[], context: ProfileContext): void;
}

/** The Gemini API's documented tuning limits (guide of 2025-04-16). */
export interface GeminiLimits {
  /** Fewer examples is an error. @default 20 */
  minExamples: number;
  /** Fewer examples is a warning; the docs recommend 100–500. @default 100 */
  recommendedExamples: number;
  /** Per example, counted in Unicode code points on the `textInput` sent (instruction folded in). @default 40000 */
  maxInputChars: number;
  /** Per example, counted in Unicode code points. @default 5000 */
  maxOutputChars: number;
  /**
   * UTF-8 bytes of the serialised `examples` array sent inline. The docs say "4 MB"; tunekit
   * reads that as 4,000,000 bytes, which also leaves room for the rest of the create body
   * under a 4 MiB (4,194,304-byte) reading. @default 4000000
   */
  maxPayloadBytes: number;
}

export const GEMINI_LIMITS: Readonly<GeminiLimits> = Object.freeze({
  minExamples: 20,
  recommendedExamples: 100,
  maxInputChars: 40_000,
  maxOutputChars: 5_000,
  maxPayloadBytes: 4_000_000,
});

const format = (n: number): string => n.toLocaleString("en-US");

/** The Unicode code points of the `textInput` an example becomes, counted only when needed. */
function inputCharsOver(example: Example, limit: number): number | undefined {
  const { instruction, input } = example;
  const units =
    instruction === undefined || instruction.length === 0
      ? input.length
      : input.length === 0
        ? instruction.length
        : instruction.length + GEMINI_INSTRUCTION_SEPARATOR.length + input.length;
  if (units <= limit) return undefined;
  const chars = countCodePoints(foldInstruction(example));
  return chars > limit ? chars : undefined;
}

/**
 * A Gemini profile with some limits changed (for a newer model, or a stricter budget).
 *
 * @example
 * ```ts
 * dataset.check(createGeminiProfile({ maxPayloadBytes: 4 * 1024 * 1024 }));
 * ```
 */
export function createGeminiProfile(overrides: Partial<GeminiLimits> = {}): LimitProfile {
  const limits: GeminiLimits = { ...GEMINI_LIMITS, ...overrides };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new InvalidOptionError(key, `${key} must be a non-negative integer, got ${value}`);
    }
  }
  return {
    name: "gemini",
    validate(examples, context) {
      const count = examples.length;
      if (count < limits.minExamples) {
        context.dataset(
          `too few examples: Gemini tuning needs at least ${limits.minExamples} examples, ` +
            `this dataset has ${count}`,
        );
      } else if (count < limits.recommendedExamples) {
        context.dataset(
          `only ${count} examples: Gemini tuning accepts ${limits.minExamples} or more, but the ` +
            `docs recommend ${limits.recommendedExamples}–500 for good results`,
          "warning",
        );
      }
      for (let i = 0; i < count && !context.full; i++) {
        const example = examples[i] as Example;
        if (example.history !== undefined && example.history.length > 0) {
          context.example(
            i,
            "messages",
            `a multi-turn conversation (${example.history.length + 2} turns): Gemini API tuning ` +
              "takes single turns only (one input, one output); tune conversations with the " +
              "local or Vertex AI backend",
          );
          continue;
        }
        const inputChars = inputCharsOver(example, limits.maxInputChars);
        if (inputChars !== undefined) {
          const folded = example.instruction ? ", instruction included" : "";
          context.example(
            i,
            "input",
            `input is ${format(inputChars)} characters (Unicode code points${folded}); ` +
              `Gemini accepts at most ${format(limits.maxInputChars)}`,
          );
        }
        if (exceedsCodePoints(example.output, limits.maxOutputChars)) {
          context.example(
            i,
            "output",
            `output is ${format(countCodePoints(example.output))} characters (Unicode code points); ` +
              `Gemini accepts at most ${format(limits.maxOutputChars)}`,
          );
        }
      }
      // Serialise only when the cheap bounds cannot decide.
      const limit = limits.maxPayloadBytes;
      const lower = geminiPayloadLowerBound(examples);
      if (lower > limit) {
        context.dataset(
          `the inline training data is at least ${format(lower)} bytes as sent; Gemini accepts ` +
            `at most ${format(limit)} bytes (4 MB): use fewer or shorter examples`,
        );
      } else if (geminiPayloadUpperBound(examples, limit) > limit) {
        const bytes = geminiPayloadBytes(examples);
        if (bytes > limit) {
          context.dataset(
            `the inline training data is ${format(bytes)} bytes as sent; Gemini accepts at most ` +
              `${format(limit)} bytes (4 MB): use fewer or shorter examples`,
          );
        }
      }
    },
  };
}

/** Gemini API limits: ≥ 20 examples (< 100 warns), input ≤ 40,000 and output ≤ 5,000 code points, payload ≤ 4 MB. */
export const geminiProfile: LimitProfile = createGeminiProfile();

/** Profiles that can be named by a string in `dataset.validate("gemini")`. */
export const PROFILES = { gemini: geminiProfile } as const;

export type ProfileName = keyof typeof PROFILES;

export function resolveProfile(profile: LimitProfile | ProfileName): LimitProfile {
  if (typeof profile !== "string") return profile;
  const found = (PROFILES as Record<string, LimitProfile | undefined>)[profile];
  if (found === undefined) {
    throw new InvalidOptionError(
      "profile",
      `unknown limit profile "${profile}"; known: ${Object.keys(PROFILES).join(", ")}`,
    );
  }
  return found;
}
