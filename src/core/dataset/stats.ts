import type { Example } from "./example.js";
import { countCodePoints } from "./text.js";

/** Lengths in Unicode code points. Percentiles use the nearest-rank method. */
export interface LengthStats {
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

/** A summary of a dataset, from `dataset.stats()`. */
export interface DatasetStats {
  count: number;
  /** Lengths of `input` (without the instruction). */
  input: LengthStats;
  output: LengthStats;
  /** Examples that carry an instruction. */
  withInstruction: number;
  /** Examples identical (instruction, input and output) to an earlier example. */
  exactDuplicates: number;
  /** Distinct inputs (with their instruction) that appear with two or more different outputs. */
  conflictingInputs: number;
}

/** The nearest-rank `p`-th percentile of ascending `sorted` (0 for an empty list). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1] as number;
}

function lengthStats(lengths: Float64Array): LengthStats {
  lengths.sort();
  let sum = 0;
  for (const length of lengths) sum += length;
  return {
    min: lengths.length === 0 ? 0 : (lengths[0] as number),
    max: lengths.length === 0 ? 0 : (lengths[lengths.length - 1] as number),
    mean: lengths.length === 0 ? 0 : sum / lengths.length,
    p50: percentile(lengths, 50),
    p90: percentile(lengths, 90),
    p99: percentile(lengths, 99),
  };
}

/** Counts, length percentiles and duplicates of `examples`. */
export function computeStats(examples: readonly Example[]): DatasetStats {
  const inputs = new Float64Array(examples.length);
  const outputs = new Float64Array(examples.length);
  const outputsByInput = new Map<string, string | Set<string>>();
  let withInstruction = 0;
  let exactDuplicates = 0;
  let conflictingInputs = 0;
  for (let i = 0; i < examples.length; i++) {
    const example = examples[i] as Example;
    inputs[i] = countCodePoints(example.input);
    outputs[i] = countCodePoints(example.output);
    if (example.instruction !== undefined) withInstruction++;
    // JSON.stringify keeps the key unambiguous whatever the strings contain.
    const key = JSON.stringify([
      example.instruction ?? null,
      example.history ?? null,
      example.input,
    ]);
    const seen = outputsByInput.get(key);
    if (seen === undefined) {
      outputsByInput.set(key, example.output);
    } else if (typeof seen === "string") {
      if (seen === example.output) exactDuplicates++;
      else {
        outputsByInput.set(key, new Set([seen, example.output]));
        conflictingInputs++;
      }
    } else if (seen.has(example.output)) {
      exactDuplicates++;
    } else {
      seen.add(example.output);
    }
  }
  return {
    count: examples.length,
    input: lengthStats(inputs),
    output: lengthStats(outputs),
    withInstruction,
    exactDuplicates,
    conflictingInputs,
  };
}
