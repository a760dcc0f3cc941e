/** Shared helpers of the Vertex tests. */
import { VertexTuner, type VertexTunerOptions } from "../../src/vertex/tuner.js";

export { collect, incrementDataset } from "../helpers.js";

export const TOKEN = "ya29.test-access-token-0123456789";
export const PROJECT = "tunekit-test";
export const LOCATION = "us-central1";
export const STAGING = "gs://tunekit-staging/runs";
export const BASE_MODEL = "gemini-2.5-flash";
export const INSTRUCTION = "Add one to the number.";

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
