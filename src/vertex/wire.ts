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
  epochCount?: string | undefined;
  learningRateMultiplier?: number | undefined;
  adapterSize?:
    | "ADAPTER_SIZE_UNSPECIFIED"
    | "ADAPTER_SIZE_ONE"
    | "ADAPTER_SIZE_TWO"
    | "ADAPTER_SIZE_FOUR"
    | "ADAPTER_SIZE_EIGHT"
    | "ADAPTER_SIZE_SIXTEEN"
    | "ADAPTER_SIZE_THIRTY_TWO"
    // A value a newer API may add.
    | (string & {})
    | undefined;
}

/** `GoogleCloudAiplatformV1SupervisedTuningSpec`. */
export interface WireSupervisedTuningSpec {
  trainingDatasetUri?: string | undefined;
  validationDatasetUri?: string | undefined;
  hyperParameters?: WireSupervisedHyperParameters | undefined;
  exportLastCheckpointOnly?: boolean | undefined;
}

/** `GoogleCloudAiplatformV1SupervisedTuningDatasetDistribution` (the fields tunekit reads). */
export interface WireDatasetDistribution {
  sum?: string | undefined;
  billableSum?: string | undefined;
  min?: number | undefined;
  max?: number | undefined;
  mean?: number | undefined;
  median?: number | undefined;
  p5?: number | undefined;
  p95?: number | undefined;
}

/** `GoogleCloudAiplatformV1SupervisedTuningDataStats`. */
export interface WireSupervisedTuningDataStats {
  tuningDatasetExampleCount?: string | undefined;
  totalTuningCharacterCount?: string | undefined;
  totalBillableTokenCount?: string | undefined;
  tuningStepCount?: string | undefined;
  totalTruncatedExampleCount?: string | undefined;
  truncatedExampleIndices?: string[] | undefined;
  droppedExampleReasons?: string[] | undefined;
  userInputTokenDistribution?: WireDatasetDistribution | undefined;
  userOutputTokenDistribution?: WireDatasetDistribution | undefined;
  userMessagePerExampleDistribution?: WireDatasetDistribution | undefined;
}

/** `GoogleCloudAiplatformV1TuningDataStats`. */
export interface WireTuningDataStats {
  supervisedTuningDataStats?: WireSupervisedTuningDataStats | undefined;
}

/** `GoogleCloudAiplatformV1TunedModel`: where the result lives. */
export interface WireTunedModelRef {
  /** `projects/{p}/locations/{l}/models/{id}[@{version}]`. */
  model?: string | undefined;
  /** `projects/{p}/locations/{l}/endpoints/{id}`: call `generateContent` here. */
  endpoint?: string | undefined;
  checkpoints?:
    | Array<{
        checkpointId?: string | undefined;
        epoch?: string | undefined;
        step?: string | undefined;
        endpoint?: string | undefined;
      }>
    | undefined;
}

/** `GoogleRpcStatus`. */
export interface WireRpcStatus {
  code?: number | undefined;
  message?: string | undefined;
  details?: unknown[] | undefined;
}

/** `GoogleCloudAiplatformV1TuningJob`. */
export interface WireTuningJob {
  name?: string | undefined;
  baseModel?: string | undefined;
  tunedModelDisplayName?: string | undefined;
  description?: string | undefined;
  labels?: Record<string, string> | undefined;
  supervisedTuningSpec?: WireSupervisedTuningSpec | undefined;
  serviceAccount?: string | undefined;
  encryptionSpec?: { kmsKeyName?: string | undefined } | undefined;
  /** A `WireJobState`, or a state a newer API may add. */
  state?: WireJobState | (string & {}) | undefined;
  createTime?: string | undefined;
  startTime?: string | undefined;
  endTime?: string | undefined;
  updateTime?: string | undefined;
  error?: WireRpcStatus | undefined;
  tunedModel?: WireTunedModelRef | undefined;
  tuningDataStats?: WireTuningDataStats | undefined;
  experiment?: string | undefined;
}

/** `GoogleCloudAiplatformV1ListTuningJobsResponse`. */
export interface WireListTuningJobsResponse {
  tuningJobs?: WireTuningJob[] | undefined;
  nextPageToken?: string | undefined;
}

/** `GoogleCloudAiplatformV1Content` (text parts only are sent by tunekit). */
export interface WireContent {
  role?: string | undefined;
  parts?: Array<{ text?: string | undefined; thought?: boolean | undefined }> | undefined;
}

/** `GoogleCloudAiplatformV1GenerationConfig` (the fields tunekit sends). */
export interface WireGenerationConfig {
  temperature?: number | undefined;
  topP?: number | undefined;
  topK?: number | undefined;
  maxOutputTokens?: number | undefined;
  stopSequences?: string[] | undefined;
  seed?: number | undefined;
}

/** `GoogleCloudAiplatformV1GenerateContentRequest` (the fields tunekit sends). */
export interface WireGenerateContentRequest {
  contents: WireContent[];
  systemInstruction?: WireContent | undefined;
  generationConfig?: WireGenerationConfig | undefined;
}

/** `GoogleCloudAiplatformV1GenerateContentResponse` (the fields tunekit reads). */
export interface WireGenerateContentResponse {
  candidates?:
    | Array<{ content?: WireContent | undefined; finishReason?: string | undefined }>
    | undefined;
  promptFeedback?:
    | { blockReason?: string | undefined; blockReasonMessage?: string | undefined }
    | undefined;
  modelVersion?: string | undefined;
}

/** The Cloud Storage `Object` resource an upload returns (the fields tunekit reads). */
export interface WireStorageObject {
  bucket?: string | undefined;
  name?: string | undefined;
  /** uint64 as a decimal string. */
  size?: string | undefined;
  generation?: string | undefined;
  contentType?: string | undefined;
}
