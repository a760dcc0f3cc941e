/**
 * The Gemini API's wire shapes (proto3 JSON, camelCase) that tunekit reads and writes,
 * as named in the discovery document `generativelanguage v1beta`. Every field the server
 * may omit is optional here: responses are read defensively.
 */

/** `TunedModel.state`. */
export type WireTunedModelState = "STATE_UNSPECIFIED" | "CREATING" | "ACTIVE" | "FAILED";

export interface WireTuningSnapshot {
  step?: number | undefined;
  epoch?: number | undefined;
  meanLoss?: number | undefined;
  computeTime?: string | undefined;
}

export interface WireHyperparameters {
  epochCount?: number | undefined;
  batchSize?: number | undefined;
  learningRate?: number | undefined;
  learningRateMultiplier?: number | undefined;
}

export interface WireTuningExample {
  textInput: string;
  output: string;
}

export interface WireTuningTask {
  startTime?: string | undefined;
  completeTime?: string | undefined;
  snapshots?: WireTuningSnapshot[] | undefined;
  hyperparameters?: WireHyperparameters | undefined;
  trainingData?: { examples: { examples: WireTuningExample[] } } | undefined;
}

export interface WireTunedModel {
  name?: string | undefined;
  baseModel?: string | undefined;
  tunedModelSource?:
    | { tunedModel?: string | undefined; baseModel?: string | undefined }
    | undefined;
  displayName?: string | undefined;
  description?: string | undefined;
  temperature?: number | undefined;
  topP?: number | undefined;
  topK?: number | undefined;
  state?: WireTunedModelState | string | undefined;
  createTime?: string | undefined;
  updateTime?: string | undefined;
  tuningTask?: WireTuningTask | undefined;
  readerProjectNumbers?: string[] | undefined;
}

/** google.rpc.Status as carried by a finished operation. */
export interface WireStatus {
  code?: number | undefined;
  message?: string | undefined;
  details?: unknown[] | undefined;
}

/** `CreateTunedModelMetadata`: every field may be absent early in a run. */
export interface WireCreateTunedModelMetadata {
  "@type"?: string | undefined;
  tunedModel?: string | undefined;
  totalSteps?: number | undefined;
  completedSteps?: number | undefined;
  completedPercent?: number | undefined;
  snapshots?: WireTuningSnapshot[] | undefined;
}

/** google.longrunning.Operation of a tuning run. */
export interface WireOperation {
  name?: string | undefined;
  metadata?: WireCreateTunedModelMetadata | undefined;
  done?: boolean | undefined;
  error?: WireStatus | undefined;
  response?: (WireTunedModel & { "@type"?: string | undefined }) | undefined;
}

export interface WireListTunedModelsResponse {
  tunedModels?: WireTunedModel[] | undefined;
  nextPageToken?: string | undefined;
}

export interface WireListOperationsResponse {
  operations?: WireOperation[] | undefined;
  nextPageToken?: string | undefined;
}

/** The subset of `Model` the preflight reads. */
export interface WireModel {
  name?: string | undefined;
  baseModelId?: string | undefined;
  displayName?: string | undefined;
  supportedGenerationMethods?: string[] | undefined;
  inputTokenLimit?: number | undefined;
  temperature?: number | undefined;
  topP?: number | undefined;
  topK?: number | undefined;
}

export interface WirePart {
  text?: string | undefined;
  thought?: boolean | undefined;
  [other: string]: unknown;
}

export interface WireContent {
  role?: string | undefined;
  parts?: WirePart[] | undefined;
}

export interface WireGenerationConfig {
  temperature?: number | undefined;
  topP?: number | undefined;
  topK?: number | undefined;
  maxOutputTokens?: number | undefined;
  stopSequences?: string[] | undefined;
  seed?: number | undefined;
  candidateCount?: number | undefined;
}

export interface WireGenerateContentRequest {
  contents: WireContent[];
  generationConfig?: WireGenerationConfig | undefined;
}

export interface WireCandidate {
  content?: WireContent | undefined;
  finishReason?: string | undefined;
}

export interface WireGenerateContentResponse {
  candidates?: WireCandidate[] | undefined;
  promptFeedback?: { blockReason?: string | undefined } | undefined;
  usageMetadata?:
    | {
        promptTokenCount?: number | undefined;
        candidatesTokenCount?: number | undefined;
        totalTokenCount?: number | undefined;
      }
    | undefined;
  modelVersion?: string | undefined;
}
