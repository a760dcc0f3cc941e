/**
 * `tunekit/testing`: fakes of the Gemini API and of Vertex AI tuning for your own Vitest/Jest
 * tests — and for Google's SDKs, which run against them unchanged.
 *
 * They behave like the services as documented (tuned models and tuning jobs that advance in
 * steps under a controllable clock, operations, cancel, pages, permissions, generate, stream and
 * countTokens, Google's error shapes), read requests and write replies with the proto3 JSON
 * mapping (enums by name or number, 64-bit integers as strings or numbers, unknown fields
 * rejected), and let a test inject faults (429/503 with Retry-After, dropped connections, slow
 * or lost responses, a job failing at step N). Serve them through msw or through a real HTTP
 * server on 127.0.0.1 (REST over plain HTTP).
 *
 * @example Vitest + msw (msw ^2.15 is an optional peer dependency)
 * ```ts
 * import { setupServer } from "msw/node";
 * import { FakeGeminiService, createFakeGeminiHandlers } from "tunekit/testing";
 *
 * const service = new FakeGeminiService({ apiKey: "test-key", tuningEnabled: true });
 * const server = setupServer(...createFakeGeminiHandlers(service));
 * beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
 * afterEach(() => service.reset());
 * afterAll(() => server.close());
 *
 * it("survives a 429 burst", async () => {
 *   service.faults.rateLimit({ route: "createTunedModel", times: 2, retryAfterSeconds: 1 });
 *   // … run your tuning code against https://generativelanguage.googleapis.com …
 * });
 * ```
 *
 * @example Real HTTP server (any client, any test runner)
 * ```ts
 * import { startFakeGeminiServer } from "tunekit/testing";
 *
 * const fake = await startFakeGeminiServer({ apiKey: "test-key", tuningEnabled: true });
 * // point your client at fake.url, then:
 * fake.service.completeAll();
 * await fake.close();
 * ```
 *
 * The fake of Vertex AI supervised tuning (plus the Cloud Storage upload it needs, `v1` and
 * `v1beta1`) sits beside it: `FakeVertexService`, `createFakeVertexHandlers`,
 * `startFakeVertexServer` (see `vertex/`).
 */
export {
  DEFAULT_BASE_MODELS,
  type FakeBaseModel,
  TUNABLE_BASE_MODEL,
} from "./gemini/base-models.js";
export { DISCOVERY_REVISION } from "./gemini/discovery-schemas.generated.js";
export { GEMINI_ENUM_NUMBERS } from "./gemini/enum-numbers.generated.js";
export {
  createFakeGeminiHandlers,
  type FakeGeminiHandlersOptions,
  GEMINI_BASE_URL,
} from "./gemini/msw.js";
export {
  type CheckTrafficOptions,
  checkRecordedTraffic,
  ROUTE_REQUEST_SCHEMAS,
  ROUTE_RESPONSE_SCHEMAS,
  type TrafficIssue,
} from "./gemini/route-schemas.js";
export { type FakeRoute, GEMINI_ROUTES, type GeminiRouteSpec } from "./gemini/routes.js";
export { BUNDLED_SCHEMAS } from "./gemini/schemas.js";
export {
  type FakeGeminiServer,
  type FakeGeminiServerOptions,
  startFakeGeminiServer,
} from "./gemini/server.js";
export { FakeGeminiService, type FakeGeminiServiceOptions } from "./gemini/service.js";
export { DEFAULT_START_TIME, FakeClock } from "./shared/clock.js";
export {
  type FaultAction,
  type FaultHandle,
  FaultInjector,
  type FaultSpec,
  type FaultTarget,
  type TuningFailureSpec,
} from "./shared/faults.js";
export {
  defaultResponder,
  type FakeResponder,
  type FakeResponderContext,
} from "./shared/generate.js";
export {
  type ErrorDetail,
  type FieldViolation,
  type GoogleErrorBody,
  HTTP_STATUS_FOR,
  RPC_CODES,
  type RpcStatusName,
} from "./shared/google-errors.js";
export type { FakeHttpRequest, FakeHttpResult, RecordedRequest } from "./shared/http.js";
export type { FakeHttpHandler, MswHandler } from "./shared/msw.js";
export {
  type EnumNumbers,
  ProtoJsonCodec,
  type ProtoJsonCodecOptions,
  type ProtoJsonIssue,
  type QueryParameter,
} from "./shared/proto-json.js";
export {
  assertValidAgainstSchema,
  type DiscoverySchema,
  type DiscoverySchemas,
  type SchemaIssue,
  type SchemaIssueCode,
  SchemaValidationError,
  type SchemaValidationResult,
  type ValidateOptions,
  validateAgainstSchema,
} from "./shared/schema-validator.js";
export * from "./vertex/index.js";
