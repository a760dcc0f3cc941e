/**
 * `tunekit/gemini` — tune, watch, cancel, manage and call tuned models on the Gemini API.
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 * import { GeminiTuner } from "tunekit/gemini";
 *
 * const tuner = new GeminiTuner({ apiKey: process.env.GEMINI_API_KEY });
 * const job = await tuner.tune({ baseModel: "models/…", dataset: await Dataset.load("data.jsonl") });
 * for await (const event of job.events()) console.log(event.type);
 * const model = await job.wait();
 * ```
 * @packageDocumentation
 */
export {
  AccessTokenAuth,
  type AccessTokenProvider,
  ApiKeyAuth,
  type AuthProvider,
} from "../remote/auth.js";
export type { FetchLike, Logger } from "../remote/http.js";
export { type Page, PagePromise } from "../remote/pager.js";
export { type CallOptions, GeminiApi } from "./api.js";
export { CancelUnsupportedError, GeminiTuningJob, type WatchOptions } from "./job.js";
export { type GeminiGenerateOptions, GeminiTunedModel, MAX_TUNED_INPUT_CHARS } from "./model.js";
export {
  assertTunedModelId,
  generateTunedModelId,
  normalizeBaseModel,
  type ParsedTuningName,
  parseTuningName,
  TUNED_MODEL_ID_PATTERN,
} from "./names.js";
export {
  type GeminiPermission,
  GeminiPermissions,
  type GranteeType,
  type NewPermission,
  type PermissionRole,
} from "./permissions.js";
export {
  CreateTunedModelMetadataSchema,
  EmptySchema,
  GenerateContentResponseSchema,
  ListModelsResponseSchema,
  ListOperationsResponseSchema,
  ListPermissionsResponseSchema,
  ListTunedModelsResponseSchema,
  ModelSchema,
  OperationSchema,
  PermissionSchema,
  TunedModelSchema,
  TuningSnapshotSchema,
} from "./schemas.js";
export {
  decodeDescription,
  encodeDescription,
  renderPrompt,
  TEMPLATE_MARKER,
} from "./template.js";
export {
  GEMINI_BASE_URL,
  GEMINI_TUNING_MOVED,
  GEMINI_TUNING_SCOPE,
  type GeminiModelUpdate,
  GeminiTuner,
  type GeminiTunerOptions,
  type ListOperationsOptions,
} from "./tuner.js";
export type * from "./wire.js";
