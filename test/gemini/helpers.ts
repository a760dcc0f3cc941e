/** Shared helpers of the Gemini tests. */
import { GeminiTuner, type GeminiTunerOptions } from "../../src/gemini/tuner.js";

export { collect, incrementDataset } from "../helpers.js";

export const API_KEY = "AIzaSyTEST-fake-key-0123456789abcdef";
export const TUNABLE_BASE = "models/gemini-1.5-flash-001-tuning";
export const UNTUNABLE_BASE = "models/gemini-2.5-flash";

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
