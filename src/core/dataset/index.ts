/**
 * Datasets: load, normalise, validate against backend limits, summarise, split and export.
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 *
 * const dataset = await Dataset.load("data.jsonl");
 * dataset.check("gemini");
 * console.log(dataset.stats());
 * ```
 */
export { Dataset, type FromOptions, type ValidateOptions } from "./dataset.js";
export {
  type ChatTurn,
  type ColumnMapping,
  type DatasetOptions,
  type DatasetShape,
  DEFAULT_MAX_ISSUES,
  type Example,
  type LoadOptions,
  type PositionKind,
} from "./example.js";
export {
  foldInstruction,
  GEMINI_INSTRUCTION_SEPARATOR,
  type GeminiExample,
  geminiPayloadBytes,
  toGeminiExamples,
} from "./gemini-wire.js";
export {
  createGeminiProfile,
  GEMINI_LIMITS,
  type GeminiLimits,
  geminiProfile,
  type LimitProfile,
  type ProfileContext,
  type ProfileName,
} from "./profiles.js";
export { mulberry32, type SplitOptions } from "./split.js";
export type { DatasetStats, LengthStats } from "./stats.js";
export { countCodePoints } from "./text.js";
export type { ValidationResult } from "./validate.js";
