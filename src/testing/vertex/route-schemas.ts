/**
 * Which schema each route of the fake Vertex service reads and writes, and a check of a
 * recorded request log against them (the Vertex twin of `checkRecordedTraffic`).
 *
 * @example
 * ```ts
 * expect(checkVertexTraffic(service.requests)).toEqual([]);
 * ```
 */
import type { TrafficIssue } from "../gemini/route-schemas.js";
import type { RecordedRequest } from "../shared/http.js";
import { validateAgainstSchema } from "../shared/schema-validator.js";
import { VERTEX_ROUTES, type VertexRoute } from "./routes.js";
import { VERTEX_SCHEMAS } from "./schemas.js";

export type { VertexRoute } from "./routes.js";
export { VERTEX_SCHEMAS } from "./schemas.js";

/** Route → schema of its JSON request body (routes without one are absent). */
export const VERTEX_ROUTE_REQUEST_SCHEMAS: Partial<Record<VertexRoute, string>> =
  Object.fromEntries(
    VERTEX_ROUTES.filter((route) => route.body !== undefined).map((route) => [
      route.name,
      route.body?.schema,
    ]),
  );

/**
 * Route → schema of its successful response body. A stream answers a sequence of responses
 * (the log stores them as an array); an upload chunk answers 308 until the last one.
 */
export const VERTEX_ROUTE_RESPONSE_SCHEMAS: Record<VertexRoute, string> = Object.fromEntries(
  VERTEX_ROUTES.map((route) => [route.name, route.response]),
) as Record<VertexRoute, string>;

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
