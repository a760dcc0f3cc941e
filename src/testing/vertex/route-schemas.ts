/**
 * Which schema each route of the fake Vertex service reads and writes, and a check of a
 * recorded request log against them (the Vertex twin of `checkRecordedTraffic`).
 *
 * @example
 * ```ts
 * expect(checkVertexTraffic(service.requests)).toEqual([]);
 * ```
 */
import type { TrafficIssue } from "../route-schemas.js";
import { type DiscoverySchemas, validateAgainstSchema } from "../schema-validator.js";
import type { RecordedRequest } from "../service.js";
import { AIPLATFORM_SCHEMAS } from "./aiplatform-schemas.generated.js";
import { STORAGE_SCHEMAS } from "./storage-schemas.js";

/** The routes of the fake Vertex AI + Cloud Storage service. */
export type VertexRoute =
  | "createTuningJob"
  | "getTuningJob"
  | "listTuningJobs"
  | "cancelTuningJob"
  | "generateContent"
  | "streamGenerateContent"
  | "uploadObject"
  | "uploadChunk";

/** The aiplatform subset plus the Cloud Storage `Object` schema. */
export const VERTEX_SCHEMAS: DiscoverySchemas = { ...AIPLATFORM_SCHEMAS, ...STORAGE_SCHEMAS };

/** Route → schema of its JSON request body (routes without one are absent). */
export const VERTEX_ROUTE_REQUEST_SCHEMAS: Partial<Record<VertexRoute, string>> = {
  createTuningJob: "GoogleCloudAiplatformV1TuningJob",
  cancelTuningJob: "GoogleCloudAiplatformV1CancelTuningJobRequest",
  generateContent: "GoogleCloudAiplatformV1GenerateContentRequest",
  streamGenerateContent: "GoogleCloudAiplatformV1GenerateContentRequest",
};

/** Route → schema of its successful response body. */
export const VERTEX_ROUTE_RESPONSE_SCHEMAS: Record<VertexRoute, string> = {
  createTuningJob: "GoogleCloudAiplatformV1TuningJob",
  getTuningJob: "GoogleCloudAiplatformV1TuningJob",
  listTuningJobs: "GoogleCloudAiplatformV1ListTuningJobsResponse",
  cancelTuningJob: "GoogleProtobufEmpty",
  generateContent: "GoogleCloudAiplatformV1GenerateContentResponse",
  // A sequence of responses (the log stores them as an array).
  streamGenerateContent: "GoogleCloudAiplatformV1GenerateContentResponse",
  uploadObject: "StorageObject",
  // A 308 (Resume Incomplete) is not 2xx; the final chunk answers the object.
  uploadChunk: "StorageObject",
};

/**
 * Validates every JSON request body a client sent (no unknown or output-only fields) and every
 * 2xx response the fake returned. Returns the problems; an empty array means all valid.
 */
export function checkVertexTraffic(
  requests: readonly RecordedRequest<VertexRoute>[],
  options: { rejectReadOnlyInRequests?: boolean } = {},
): TrafficIssue[] {
  const found: TrafficIssue[] = [];
  for (const entry of requests) {
    if (entry.route === undefined) continue;
    const base = { seq: entry.seq, method: entry.method, path: entry.path };
    const requestSchema = VERTEX_ROUTE_REQUEST_SCHEMAS[entry.route];
    if (requestSchema !== undefined && entry.body !== undefined) {
      const result = validateAgainstSchema(entry.body, requestSchema, {
        schemas: VERTEX_SCHEMAS,
        rejectReadOnly: options.rejectReadOnlyInRequests ?? true,
      });
      if (!result.valid) {
        found.push({ ...base, direction: "request", schema: requestSchema, issues: result.issues });
      }
    }
    const status = entry.status;
    if (status === undefined || status < 200 || status >= 300) continue;
    const schema = VERTEX_ROUTE_RESPONSE_SCHEMAS[entry.route];
    const bodies =
      entry.route === "streamGenerateContent" && Array.isArray(entry.response)
        ? entry.response
        : [entry.response];
    for (const body of bodies) {
      const result = validateAgainstSchema(body, schema, { schemas: VERTEX_SCHEMAS });
      if (!result.valid) {
        found.push({ ...base, direction: "response", schema, issues: result.issues });
      }
    }
  }
  return found;
}
