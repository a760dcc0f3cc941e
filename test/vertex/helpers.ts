/** Shared helpers of the Vertex tests. */
import { Dataset } from "../../src/core/dataset/dataset.js";
import type { JobEvent } from "../../src/core/types.js";
import { VertexTuner, type VertexTunerOptions } from "../../src/vertex/tuner.js";

export const TOKEN = "ya29.test-access-token-0123456789";
export const PROJECT = "tunekit-test";
export const LOCATION = "us-central1";
export const STAGING = "gs://tunekit-staging/runs";
export const BASE_MODEL = "gemini-2.5-flash";
export const INSTRUCTION = "Add one to the number.";

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
export function testTuner(options: VertexTunerOptions = {}): VertexTuner {
  return new VertexTuner({
    project: PROJECT,
    location: LOCATION,
    accessToken: TOKEN,
    stagingUri: STAGING,
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
