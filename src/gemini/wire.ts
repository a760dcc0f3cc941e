/**
 * The Gemini API's wire shapes (proto3 JSON, camelCase) that tunekit reads and writes,
 * as named in the discovery document `generativelanguage v1beta`. Every field the server
 * may omit is optional here: responses are read defensively.
 */

/** `TunedModel.state`. */
export type WireTunedModelState = "STATE_UNSPECIFIED" | "CREATING" | "ACTIVE" | "FAILED";

export interface WireTuningSnapshot {
  step?: number;
  epoch?: number;
  meanLoss?: number;
  computeTime?: string;
}

export interface WireHyperparameters {
  epochCount?: number;
  batchSize?: number;
  learningRate?: number;
  learningRateMultiplier?: number;
}

export interface WireTuningExample {
  textInput: string;
  output: string;
}

export interface WireTuningTask {
  startTime?: string;
  completeTime?: string;
  snapshots?: WireTuningSnapshot[];
  hyperparameters?: WireHyperparameters;
  trainingData?: { examples: { examples: WireTuningExample[] } };
}

export interface WireTunedModel {
  name?: string;
  baseModel?: string;
  tunedModelSource?: { tunedModel?: string; baseModel?: string };
  displayName?: string;
  description?: string;
  temperature?: number;
  topP?: number;
  topK?: number;
  state?: WireTunedModelState | string;
  createTime?: string;
  updateTime?: string;
  tuningTask?: WireTuningTask;
  readerProjectNumbers?: string[];
}

/** google.rpc.Status as carried by a finished operation. */
export interface WireStatus {
  code?: number;
  message?: string;
  details?: unknown[];
}

/** `CreateTunedModelMetadata`: every field may be absent early in a run. */
export interface WireCreateTunedModelMetadata {
  "@type"?: string;
  tunedModel?: string;
  totalSteps?: number;
  completedSteps?: number;
  completedPercent?: number;
  snapshots?: WireTuningSnapshot[];
}

/** google.longrunning.Operation of a tuning run. */
export interface WireOperation {
  name?: string;
  metadata?: WireCreateTunedModelMetadata;
  done?: boolean;
  error?: WireStatus;
  response?: WireTunedModel & { "@type"?: string };
}

export interface WireListTunedModelsResponse {
  tunedModels?: WireTunedModel[];
  nextPageToken?: string;
}

export interface WireListOperationsResponse {
  operations?: WireOperation[];
  nextPageToken?: string;
}

/** The subset of `Model` the preflight reads. */
export interface WireModel {
  name?: string;
  baseModelId?: string;
  displayName?: string;
  supportedGenerationMethods?: string[];
  inputTokenLimit?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
}

export interface WirePart {
  text?: string;
  thought?: boolean;
  [other: string]: unknown;
}

export interface WireContent {
  role?: string;
  parts?: WirePart[];
}

export interface WireGenerationConfig {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxOutputTokens?: number;
  stopSequences?: string[];
  seed?: number;
  candidateCount?: number;
}

export interface WireGenerateContentRequest {
  contents: WireContent[];
  generationConfig?: WireGenerationConfig;
}

export interface WireCandidate {
  content?: WireContent;
  finishReason?: string;
}

export interface WireGenerateContentResponse {
  candidates?: WireCandidate[];
  promptFeedback?: { blockReason?: string };
  usageMetadata?: {
    promptTokenCount?: number;
    candidatesTokenCount?: number;
    totalTokenCount?: number;
  };
  modelVersion?: string;
}
