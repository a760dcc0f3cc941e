/**
 * `tunekit/vertex` — supervised tuning of Gemini models on Vertex AI: dataset staging to Cloud
 * Storage, tuning jobs (create, watch, cancel, list, get) and generation on the tuned endpoint.
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 * import { VertexTuner } from "tunekit/vertex";
 *
 * const tuner = new VertexTuner({ project: "my-project", location: "us-central1", stagingUri: "gs://my-bucket/tuning" });
 * const job = await tuner.tune({ baseModel: "gemini-2.5-flash", dataset: await Dataset.load("data.jsonl") });
 * for await (const event of job.events()) console.log(event.type);
 * const model = await job.wait();
 * ```
 * @packageDocumentation
 */
export {
  AdcAuth,
  type AdcAuthOptions,
  CLOUD_PLATFORM_SCOPE,
  type GoogleAuthLike,
} from "../remote/adc.js";
export { AccessTokenAuth, type AccessTokenProvider, type AuthProvider } from "../remote/auth.js";
export type { FetchLike, Logger } from "../remote/http.js";
export { type Page, PagePromise } from "../remote/pager.js";
export { type CallOptions, VertexApi } from "./api.js";
export {
  describeDataStats,
  toDataStats,
  toJobState,
  VERTEX_TEMPLATE_KIND,
  type VertexDataStats,
} from "./convert.js";
export {
  createVertexProfile,
  DEFAULT_CHUNK_BYTES,
  toVertexJsonl,
  toVertexLine,
  toVertexRecord,
  VERTEX_LIMITS,
  VERTEX_VALIDATION_SOFT_CAP,
  type VertexLimits,
  type VertexTrainingRecord,
  vertexJsonlChunks,
  vertexProfile,
  vertexValidationProfile,
} from "./dataset.js";
export { VertexTuningJob, type VertexWatchOptions } from "./job.js";
export { type VertexGenerateOptions, VertexTunedModel } from "./model.js";
export {
  type GcsLocation,
  type ParsedJobName,
  parseGcsUri,
  parseJobName,
  REQUEST_LABEL_KEY,
  STORAGE_BASE_URL,
  VERTEX_GLOBAL_BASE_URL,
  vertexBaseUrl,
} from "./names.js";
export {
  GenerateContentResponseSchema,
  ListTuningJobsResponseSchema,
  StorageObjectSchema,
  TuningJobSchema,
} from "./schemas.js";
export {
  DEFAULT_RESUMABLE_CHUNK_BYTES,
  JSONL_CONTENT_TYPE,
  RESUMABLE_CHUNK_QUANTUM,
  type StagedFile,
  type UploadMode,
  type UploadOptions,
  uploadDataset,
} from "./staging.js";
export {
  type ListJobsOptions,
  type VertexTuneRequest,
  VertexTuner,
  type VertexTunerOptions,
} from "./tuner.js";
export type * from "./wire.js";
