/**
 * Which discovery schema each route's request body and 2xx response body follow, for tests
 * that assert "every request sent and every response received validates".
 *
 * @example
 * ```ts
 * expect(checkRecordedTraffic(service.requests)).toEqual([]);
 * ```
 */
import type { FakeRoute } from "./faults.js";
import { type SchemaIssue, validateAgainstSchema } from "./schema-validator.js";
import type { RecordedRequest } from "./service.js";

/** Route → schema of its request body (routes without a body are absent). */
export const ROUTE_REQUEST_SCHEMAS: Partial<Record<FakeRoute, string>> = {
  createTunedModel: "TunedModel",
  updateTunedModel: "TunedModel",
  generateContent: "GenerateContentRequest",
  streamGenerateContent: "GenerateContentRequest",
};

/**
 * Route → schema of its successful response body. `streamGenerateContent` answers a sequence of
 * `GenerateContentResponse` (the log stores them as an array).
 */
export const ROUTE_RESPONSE_SCHEMAS: Record<FakeRoute, string> = {
  listModels: "ListModelsResponse",
  getModel: "Model",
  createTunedModel: "Operation",
  listTunedModels: "ListTunedModelsResponse",
  getTunedModel: "TunedModel",
  updateTunedModel: "TunedModel",
  deleteTunedModel: "Empty",
  generateContent: "GenerateContentResponse",
  streamGenerateContent: "GenerateContentResponse",
  listOperations: "ListOperationsResponse",
  getOperation: "Operation",
  cancelOperation: "Empty",
};

/** A recorded request or response that does not match its discovery schema. */
export interface TrafficIssue {
  seq: number;
  method: string;
  path: string;
  direction: "request" | "response";
  schema: string;
  issues: SchemaIssue[];
}

/** Options of {@link checkRecordedTraffic}. */
export interface CheckTrafficOptions {
  /** Check request bodies. @default true */
  requests?: boolean;
  /** Check successful (2xx) response bodies. @default true */
  responses?: boolean;
  /** Report output-only fields sent in request bodies. @default true */
  rejectReadOnlyInRequests?: boolean;
}

/**
 * Validate a request log (`service.requests`) against the discovery schemas: every request
 * body a client sent (camelCase, no unknown or output-only fields) and every successful
 * response the fake returned. Returns the problems found; an empty array means all valid.
 */
export function checkRecordedTraffic(
  requests: readonly RecordedRequest[],
  options: CheckTrafficOptions = {},
): TrafficIssue[] {
  const found: TrafficIssue[] = [];
  for (const entry of requests) {
    if (entry.route === undefined) continue;
    const base = { seq: entry.seq, method: entry.method, path: entry.path };
    const requestSchema = ROUTE_REQUEST_SCHEMAS[entry.route];
    if (options.requests !== false && requestSchema !== undefined && entry.body !== undefined) {
      const result = validateAgainstSchema(entry.body, requestSchema, {
        rejectReadOnly: options.rejectReadOnlyInRequests ?? true,
      });
      if (!result.valid) {
        found.push({ ...base, direction: "request", schema: requestSchema, issues: result.issues });
      }
    }
    const status = entry.status;
    if (options.responses === false || status === undefined || status < 200 || status >= 300)
      continue;
    const responseSchema = ROUTE_RESPONSE_SCHEMAS[entry.route];
    const bodies =
      entry.route === "streamGenerateContent" && Array.isArray(entry.response)
        ? entry.response
        : [entry.response];
    for (const body of bodies) {
      const result = validateAgainstSchema(body, responseSchema);
      if (!result.valid) {
        found.push({
          ...base,
          direction: "response",
          schema: responseSchema,
          issues: result.issues,
        });
      }
    }
  }
  return found;
}
