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
 * - `"bf16"`: every projection and the LM head rounded to bf16 once at load, and their
 *   products computed with bf16 inputs and f32 accumulation (AVX512-BF16 `vdpbf16ps` where
 *   the CPU has it, a portable kernel elsewhere). The speed option for training: on a CPU with
 *   AVX512-BF16 the frozen products run ~2.5× faster than in f32. LoRA weights, gradients,
 *   the optimiser, norms and the embedding lookup stay f32, like PyTorch's bf16 autocast; the
 *   loss moves by the rounding (about 1e-4 relative on the test fixtures). Works on GGUF files
 *   too (dequantised, then rounded); there the embedding stays in the file's blocks, whose
 *   looked-up rows are the exact f32 values, rather than a second full f32 copy.
 */
export type BaseWeights = "stored" | "f32" | "q8_0" | "q4_k" | "bf16";

/** Every {@link BaseWeights} value, in the order help texts list them. */
export const BASE_WEIGHTS: readonly BaseWeights[] = ["stored", "f32", "q8_0", "q4_k", "bf16"];

/** @internal Throws `InvalidOptionError` unless `value` is a {@link BaseWeights} or undefined. */
export function checkBaseWeights(value: unknown, option: string): void {
  if (value !== undefined && !BASE_WEIGHTS.includes(value as BaseWeights)) {
    throw new InvalidOptionError(
      option,
      `Invalid ${option}: must be ${BASE_WEIGHTS.map((b) => `"${b}"`).join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
}
