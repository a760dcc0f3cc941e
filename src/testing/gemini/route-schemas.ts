/**
 * Which discovery schema each route's request body and 2xx response body follow, for tests
 * that assert "every request sent and every response received validates".
 *
 * @example
 * ```ts
 * expect(checkRecordedTraffic(service.requests)).toEqual([]);
 * ```
 */
import type { RecordedRequest } from "../shared/http.js";
import { type SchemaIssue, validateAgainstSchema } from "../shared/schema-validator.js";
import { type FakeRoute, GEMINI_ROUTES } from "./routes.js";

/** Route → schema of its request body (routes without a body are absent). */
export const ROUTE_REQUEST_SCHEMAS: Partial<Record<FakeRoute, string>> = Object.fromEntries(
  GEMINI_ROUTES.filter((route) => route.body !== undefined).map((route) => [
    route.name,
    route.body?.schema,
  ]),
);

/**
 * Route → schema of its successful response body. Streams answer a sequence of
 * `GenerateContentResponse` (the log stores them as an array).
 */
export const ROUTE_RESPONSE_SCHEMAS: Record<FakeRoute, string> = Object.fromEntries(
  GEMINI_ROUTES.map((route) => [route.name, route.response]),
) as Record<FakeRoute, string>;

const STREAMS = new Set<string>(["streamGenerateContent", "modelStreamGenerateContent"]);

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
  requests: readonly RecordedRequest<FakeRoute>[],
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
      STREAMS.has(entry.route) && Array.isArray(entry.response) ? entry.response : [entry.response];
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
