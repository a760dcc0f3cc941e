/** Shared helpers of the Gemini tests. */
import { Dataset } from "../../src/core/dataset/dataset.js";
import type { JobEvent } from "../../src/core/types.js";
import { GeminiTuner, type GeminiTunerOptions } from "../../src/gemini/tuner.js";

export const API_KEY = "AIzaSyTEST-fake-key-0123456789abcdef";
export const TUNABLE_BASE = "models/gemini-1.5-flash-001-tuning";
export const UNTUNABLE_BASE = "models/gemini-2.5-flash";

/** `count` examples `"n" → "n+1"`, with an optional shared instruction. */
export function incrementDataset(count = 24, instruction?: string): Dataset {
  return Dataset.from(
    Array.from({ length: count }, (_, i) =>
      instruction === undefined
        ? { input: String(i), output: String(i + 1) }
        : { instruction, input: String(i), output: String(i + 1) },
    ),
  );
}

/** A tuner with fast polling and backoff, for tests. */
export function testTuner(options: GeminiTunerOptions = {}): GeminiTuner {
  return new GeminiTuner({
    apiKey: API_KEY,
    pollIntervalMs: 5,
    maxPollIntervalMs: 20,
    initialRetryDelayMs: 5,
    maxRetryDelayMs: 20,
    cancelTimeoutMs: 5_000,
    env: {},
    ...options,
  });
}

/** Collects every event of a stream until it ends. */
export async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}
