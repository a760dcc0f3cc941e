/**
 * Base models the fake lists under `models/`. By default none accepts tuning, as on the real
 * Gemini API since May 2025; add {@link TUNABLE_BASE_MODEL} (or pass `tuningEnabled: true`) to
 * test code that tunes.
 */

/** A base model as `GET v1beta/models/{id}` returns it (discovery schema `Model`). */
export interface FakeBaseModel {
  name: string;
  baseModelId?: string;
  version: string;
  displayName?: string;
  description?: string;
  inputTokenLimit?: number;
  outputTokenLimit?: number;
  supportedGenerationMethods: string[];
  temperature?: number;
  maxTemperature?: number;
  topP?: number;
  topK?: number;
}

/** The base model Gemini API tuning used from Aug 2024 until May 2025; it accepts `createTunedModel`. */
export const TUNABLE_BASE_MODEL: FakeBaseModel = {
  name: "models/gemini-1.5-flash-001-tuning",
  baseModelId: "gemini-1.5-flash",
  version: "001",
  displayName: "Gemini 1.5 Flash 001 Tuning",
  description: "Version of Gemini 1.5 Flash that supports tuning.",
  inputTokenLimit: 16384,
  outputTokenLimit: 8192,
  supportedGenerationMethods: ["generateContent", "countTokens", "createTunedModel"],
  temperature: 1,
  maxTemperature: 2,
  topP: 0.95,
  topK: 64,
};

/** Today's shape of the model list: generation models, none of which supports `createTunedModel`. */
export const DEFAULT_BASE_MODELS: readonly FakeBaseModel[] = [
  {
    name: "models/gemini-2.5-flash",
    baseModelId: "gemini-2.5-flash",
    version: "001",
    displayName: "Gemini 2.5 Flash",
    inputTokenLimit: 1048576,
    outputTokenLimit: 65536,
    supportedGenerationMethods: [
      "generateContent",
      "countTokens",
      "createCachedContent",
      "batchGenerateContent",
    ],
    temperature: 1,
    maxTemperature: 2,
    topP: 0.95,
    topK: 64,
  },
  {
    name: "models/gemini-2.0-flash-001",
    baseModelId: "gemini-2.0-flash",
    version: "2.0",
    displayName: "Gemini 2.0 Flash 001",
    inputTokenLimit: 1048576,
    outputTokenLimit: 8192,
    supportedGenerationMethods: [
      "generateContent",
      "countTokens",
      "createCachedContent",
      "batchGenerateContent",
    ],
    temperature: 1,
    maxTemperature: 2,
    topP: 0.95,
    topK: 40,
  },
];
