/**
 * The routes of the fake Vertex AI + Cloud Storage service: method + path → route name, the
 * discovery schema of the request body, the query parameters and the reply schema. Vertex AI
 * paths are served under `v1` and `v1beta1` (Google's GenAI SDKs default to `v1beta1`); both
 * are read with the v1 schemas.
 */
import type { QueryParameter } from "../shared/proto-json.js";

/** The routes of the fake Vertex AI + Cloud Storage service. */
export type VertexRoute =
  | "createTuningJob"
  | "getTuningJob"
  | "listTuningJobs"
  | "cancelTuningJob"
  | "generateContent"
  | "streamGenerateContent"
  | "countTokens"
  | "uploadObject"
  | "uploadChunk";

/** One route of the table. */
export interface VertexRouteSpec {
  name: VertexRoute;
  method: string;
  /** Matched against the path after `/{version}/` (Vertex AI) or the whole path (uploads). */
  pattern: RegExp;
  /** `aiplatform` paths carry a version; uploads do not. */
  api: "aiplatform" | "storage";
  discoveryId?: string;
  query?: Record<string, QueryParameter>;
  body?: { schema: string; root: string };
  response: string;
}

const location = String.raw`projects\/([^/]+)\/locations\/([^/]+)`;

/** Every route, in match order. */
export const VERTEX_ROUTES: readonly VertexRouteSpec[] = [
  {
    name: "createTuningJob",
    method: "POST",
    pattern: new RegExp(`^${location}\\/tuningJobs$`),
    api: "aiplatform",
    discoveryId: "aiplatform.projects.locations.tuningJobs.create",
    body: { schema: "GoogleCloudAiplatformV1TuningJob", root: "tuning_job" },
    response: "GoogleCloudAiplatformV1TuningJob",
  },
  {
    name: "listTuningJobs",
    method: "GET",
    pattern: new RegExp(`^${location}\\/tuningJobs$`),
    api: "aiplatform",
    discoveryId: "aiplatform.projects.locations.tuningJobs.list",
    query: {
      filter: { type: "string" },
      pageSize: { type: "integer", format: "int32" },
      pageToken: { type: "string" },
    },
    response: "GoogleCloudAiplatformV1ListTuningJobsResponse",
  },
  {
    name: "getTuningJob",
    method: "GET",
    pattern: new RegExp(`^${location}\\/tuningJobs\\/([^/:]+)$`),
    api: "aiplatform",
    discoveryId: "aiplatform.projects.locations.tuningJobs.get",
    response: "GoogleCloudAiplatformV1TuningJob",
  },
  {
    name: "cancelTuningJob",
    method: "POST",
    pattern: new RegExp(`^${location}\\/tuningJobs\\/([^/:]+):cancel$`),
    api: "aiplatform",
    discoveryId: "aiplatform.projects.locations.tuningJobs.cancel",
    body: { schema: "GoogleCloudAiplatformV1CancelTuningJobRequest", root: "" },
    response: "GoogleProtobufEmpty",
  },
  {
    name: "generateContent",
    method: "POST",
    pattern: new RegExp(`^${location}\\/endpoints\\/([^/:]+):generateContent$`),
    api: "aiplatform",
    discoveryId: "aiplatform.projects.locations.endpoints.generateContent",
    body: { schema: "GoogleCloudAiplatformV1GenerateContentRequest", root: "" },
    response: "GoogleCloudAiplatformV1GenerateContentResponse",
  },
  {
    name: "streamGenerateContent",
    method: "POST",
    pattern: new RegExp(`^${location}\\/endpoints\\/([^/:]+):streamGenerateContent$`),
    api: "aiplatform",
    discoveryId: "aiplatform.projects.locations.endpoints.streamGenerateContent",
    body: { schema: "GoogleCloudAiplatformV1GenerateContentRequest", root: "" },
    response: "GoogleCloudAiplatformV1GenerateContentResponse",
  },
  {
    name: "countTokens",
    method: "POST",
    pattern: new RegExp(`^${location}\\/endpoints\\/([^/:]+):countTokens$`),
    api: "aiplatform",
    discoveryId: "aiplatform.projects.locations.endpoints.countTokens",
    body: { schema: "GoogleCloudAiplatformV1CountTokensRequest", root: "" },
    response: "GoogleCloudAiplatformV1CountTokensResponse",
  },
  {
    name: "uploadObject",
    method: "POST",
    pattern: /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/,
    api: "storage",
    response: "StorageObject",
  },
  {
    name: "uploadChunk",
    method: "PUT",
    pattern: /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/,
    api: "storage",
    response: "StorageObject",
  },
];
