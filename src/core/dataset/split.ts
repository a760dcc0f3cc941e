import { InvalidOptionError } from "../errors.js";

/** How to split a dataset. Give exactly one of `validationFraction` and `validationSize`. */
export interface SplitOptions {
  /** Share of examples for validation, strictly between 0 and 1 (rounded, at least 1 example). */
  validationFraction?: number;
  /** Number of examples for validation, from 1 to size − 1. */
  validationSize?: number;
  /** Seed of the shuffle; the same seed and dataset always give the same split. @default 0 */
  seed?: number;
}

/** mulberry32: a small, fast, seedable 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function validationCount(size: number, options: SplitOptions): number {
  const { validationFraction: fraction, validationSize } = options;
  if ((fraction === undefined) === (validationSize === undefined)) {
    throw new InvalidOptionError(
      "validationFraction",
      "give exactly one of validationFraction and validationSize",
    );
  }
  if (size < 2) {
    throw new InvalidOptionError(
      "validationSize",
      `cannot split ${size} example${size === 1 ? "" : "s"}: each side needs at least one`,
    );
  }
  if (fraction !== undefined) {
    if (!(fraction > 0 && fraction < 1)) {
      throw new InvalidOptionError(
        "validationFraction",
        `validationFraction must be between 0 and 1 (exclusive), got ${fraction}`,
      );
    }
    return Math.min(Math.max(Math.round(size * fraction), 1), size - 1);
  }
  const count = validationSize as number;
  if (!Number.isInteger(count) || count < 1 || count > size - 1) {
    throw new InvalidOptionError(
      "validationSize",
      `validationSize must be an integer from 1 to ${size - 1}, got ${count}`,
    );
  }
  return count;
}

/**
 * Chooses validation indexes with a seeded Fisher–Yates shuffle. Returns both index
 * lists in ascending order, so each side keeps the dataset's original order.
 */
export function splitIndexes(
  size: number,
  options: SplitOptions,
): { train: number[]; validation: number[] } {
  const count = validationCount(size, options);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) {
    throw new InvalidOptionError("seed", `seed must be an integer, got ${seed}`);
  }
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  const random = mulberry32(seed);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i] as number;
    order[i] = order[j] as number;
    order[j] = swap;
  }
  const validation = Array.from(order.subarray(0, count)).sort((a, b) => a - b);
  const chosen = new Uint8Array(size);
  for (const index of validation) chosen[index] = 1;
  const train: number[] = [];
  for (let i = 0; i < size; i++) if (chosen[i] === 0) train.push(i);
  return { train, validation };
}
