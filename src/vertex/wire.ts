/**
 * Vertex AI (aiplatform v1) wire shapes tunekit reads and writes, named after the discovery
 * document's schemas (`GoogleCloudAiplatformV1TuningJob`, …). int64 fields travel as decimal
 * strings; timestamps are RFC 3339 strings. Everything is optional: a reply is checked where
 * it is read, never trusted to be complete.
 */

/** `JobState` of a tuning job. */
export type WireJobState =
  | "JOB_STATE_UNSPECIFIED"
  | "JOB_STATE_QUEUED"
  | "JOB_STATE_PENDING"
  | "JOB_STATE_RUNNING"
  | "JOB_STATE_SUCCEEDED"
  | "JOB_STATE_FAILED"
  | "JOB_STATE_CANCELLING"
  | "JOB_STATE_CANCELLED"
  | "JOB_STATE_PAUSED"
  | "JOB_STATE_EXPIRED"
  | "JOB_STATE_UPDATING"
  | "JOB_STATE_PARTIALLY_SUCCEEDED";

/** `GoogleCloudAiplatformV1SupervisedHyperParameters`. */
export interface WireSupervisedHyperParameters {
  /** int64 as a decimal string. */
  epochCount?: string;
  learningRateMultiplier?: number;
  adapterSize?:
    | "ADAPTER_SIZE_UNSPECIFIED"
    | "ADAPTER_SIZE_ONE"
    | "ADAPTER_SIZE_TWO"
    | "ADAPTER_SIZE_FOUR"
    | "ADAPTER_SIZE_EIGHT"
    | "ADAPTER_SIZE_SIXTEEN"
    | "ADAPTER_SIZE_THIRTY_TWO";
}

/** `GoogleCloudAiplatformV1SupervisedTuningSpec`. */
export interface WireSupervisedTuningSpec {
  trainingDatasetUri?: string;
  validationDatasetUri?: string;
  hyperParameters?: WireSupervisedHyperParameters;
  exportLastCheckpointOnly?: boolean;
}

/** `GoogleCloudAiplatformV1SupervisedTuningDatasetDistribution` (the fields tunekit reads). */
export interface WireDatasetDistribution {
  sum?: string;
  billableSum?: string;
  min?: number;
  max?: number;
  mean?: number;
  median?: number;
  p5?: number;
  p95?: number;
}

/** `GoogleCloudAiplatformV1SupervisedTuningDataStats`. */
export interface WireSupervisedTuningDataStats {
  tuningDatasetExampleCount?: string;
  totalTuningCharacterCount?: string;
  totalBillableTokenCount?: string;
  tuningStepCount?: string;
  totalTruncatedExampleCount?: string;
  truncatedExampleIndices?: string[];
  droppedExampleReasons?: string[];
  userInputTokenDistribution?: WireDatasetDistribution;
  userOutputTokenDistribution?: WireDatasetDistribution;
  userMessagePerExampleDistribution?: WireDatasetDistribution;
}

/** `GoogleCloudAiplatformV1TuningDataStats`. */
export interface WireTuningDataStats {
  supervisedTuningDataStats?: WireSupervisedTuningDataStats;
}

/** `GoogleCloudAiplatformV1TunedModel`: where the result lives. */
export interface WireTunedModelRef {
  /** `projects/{p}/locations/{l}/models/{id}[@{version}]`. */
  model?: string;
  /** `projects/{p}/locations/{l}/endpoints/{id}`: call `generateContent` here. */
  endpoint?: string;
  checkpoints?: Array<{ checkpointId?: string; epoch?: string; step?: string; endpoint?: string }>;
}

/** `GoogleRpcStatus`. */
export interface WireRpcStatus {
  code?: number;
  message?: string;
  details?: unknown[];
}

/** `GoogleCloudAiplatformV1TuningJob`. */
export interface WireTuningJob {
  name?: string;
  baseModel?: string;
  tunedModelDisplayName?: string;
  description?: string;
  labels?: Record<string, string>;
  supervisedTuningSpec?: WireSupervisedTuningSpec;
  serviceAccount?: string;
  encryptionSpec?: { kmsKeyName?: string };
  state?: WireJobState;
  createTime?: string;
  startTime?: string;
  endTime?: string;
  updateTime?: string;
  error?: WireRpcStatus;
  tunedModel?: WireTunedModelRef;
  tuningDataStats?: WireTuningDataStats;
  experiment?: string;
}

/** `GoogleCloudAiplatformV1ListTuningJobsResponse`. */
export interface WireListTuningJobsResponse {
  tuningJobs?: WireTuningJob[];
  nextPageToken?: string;
}

/** `GoogleCloudAiplatformV1Content` (text parts only are sent by tunekit). */
export interface WireContent {
  role?: string;
  parts?: Array<{ text?: string; thought?: boolean }>;
}

/** `GoogleCloudAiplatformV1GenerationConfig` (the fields tunekit sends). */
export interface WireGenerationConfig {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxOutputTokens?: number;
  stopSequences?: string[];
  seed?: number;
}

/** `GoogleCloudAiplatformV1GenerateContentRequest` (the fields tunekit sends). */
export interface WireGenerateContentRequest {
  contents: WireContent[];
  systemInstruction?: WireContent;
  generationConfig?: WireGenerationConfig;
}

/** `GoogleCloudAiplatformV1GenerateContentResponse` (the fields tunekit reads). */
export interface WireGenerateContentResponse {
  candidates?: Array<{ content?: WireContent; finishReason?: string }>;
  promptFeedback?: { blockReason?: string; blockReasonMessage?: string };
  modelVersion?: string;
}

/** The Cloud Storage `Object` resource an upload returns (the fields tunekit reads). */
export interface WireStorageObject {
  bucket?: string;
  name?: string;
  /** uint64 as a decimal string. */
  size?: string;
  generation?: string;
  contentType?: string;
}
