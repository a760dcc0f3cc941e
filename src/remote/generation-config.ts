import { InvalidOptionError } from "../core/errors.js";
import type { GenerateOptions } from "../core/types.js";

/** The sampling fields Google's `generationConfig` shares between the Gemini API and Vertex AI. */
export interface SamplingConfig {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxOutputTokens?: number;
  seed?: number;
  stopSequences?: string[];
}

/**
 * Checks a call's sampling options and turns them into a `generationConfig`; undefined when
 * none was given, so the tuned model's own defaults apply.
 *
 * @throws InvalidOptionError naming the option that is out of range.
 */
export function samplingConfig(options: GenerateOptions): SamplingConfig | undefined {
  const check = (
    name: string,
    value: number | undefined,
    ok: (v: number) => boolean,
    rule: string,
  ) => {
    if (value !== undefined && (typeof value !== "number" || !ok(value))) {
      throw new InvalidOptionError(name, `${name} must be ${rule}, got ${String(value)}`);
    }
  };
  check("temperature", options.temperature, (v) => v >= 0 && v <= 2, "between 0 and 2");
  check("topP", options.topP, (v) => v >= 0 && v <= 1, "between 0 and 1");
  check("topK", options.topK, (v) => Number.isInteger(v) && v >= 1, "a whole number ≥ 1");
  check(
    "maxOutputTokens",
    options.maxOutputTokens,
    (v) => Number.isInteger(v) && v >= 1,
    "a whole number ≥ 1",
  );
  check("seed", options.seed, Number.isInteger, "a whole number");
  const config: SamplingConfig = {};
  if (options.temperature !== undefined) config.temperature = options.temperature;
  if (options.topP !== undefined) config.topP = options.topP;
  if (options.topK !== undefined) config.topK = options.topK;
  if (options.maxOutputTokens !== undefined) config.maxOutputTokens = options.maxOutputTokens;
  if (options.seed !== undefined) config.seed = options.seed;
  if (options.stopSequences !== undefined) config.stopSequences = [...options.stopSequences];
  return Object.keys(config).length > 0 ? config : undefined;
}
