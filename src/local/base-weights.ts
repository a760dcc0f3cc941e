/**
 * `baseWeights`: how a base model's weight matrices are held in memory. A module of its own, with
 * no native code, so the CLI can validate the flag without loading the addon.
 */
import { InvalidOptionError } from "../core/errors.js";

/**
 * How a base model's weight matrices are held in memory:
 * - `"stored"`: as the file stores them (a GGUF's quantised blocks, bf16/f16 safetensors stay
 *   16-bit); matmuls dequantise tile by tile, never the whole matrix.
 * - `"f32"`: dequantised/upcast to f32 (exact parity with transformers on f32 checkpoints).
 * - `"q8_0"` / `"q4_k"`: a safetensors base quantised to Q8_0 / Q4_K while loading (rows that
 *   are not whole Q4_K blocks use Q8_0). Not for GGUF files, which are already quantised.
 */
export type BaseWeights = "stored" | "f32" | "q8_0" | "q4_k";

/** Every {@link BaseWeights} value, in the order help texts list them. */
export const BASE_WEIGHTS: readonly BaseWeights[] = ["stored", "f32", "q8_0", "q4_k"];

/** @internal Throws `InvalidOptionError` unless `value` is a {@link BaseWeights} or undefined. */
export function checkBaseWeights(value: unknown, option: string): void {
  if (value !== undefined && !BASE_WEIGHTS.includes(value as BaseWeights)) {
    throw new InvalidOptionError(
      option,
      `Invalid ${option}: must be ${BASE_WEIGHTS.map((b) => `"${b}"`).join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
}
