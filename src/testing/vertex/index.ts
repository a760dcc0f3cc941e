/** The fake Vertex AI tuning service (exported from `tunekit/testing`). */
export {
  AIPLATFORM_DISCOVERY_REVISION,
  AIPLATFORM_SCHEMAS,
} from "./aiplatform-schemas.generated.js";
export { VERTEX_ENUM_NUMBERS } from "./enum-numbers.generated.js";
export {
  createFakeVertexHandlers,
  type FakeVertexHandlersOptions,
  VERTEX_HOSTS_PATTERN,
} from "./msw.js";
export {
  checkVertexTraffic,
  VERTEX_ROUTE_REQUEST_SCHEMAS,
  VERTEX_ROUTE_RESPONSE_SCHEMAS,
} from "./route-schemas.js";
export { VERTEX_ROUTES, type VertexRoute, type VertexRouteSpec } from "./routes.js";
export { VERTEX_SCHEMAS } from "./schemas.js";
export {
  type FakeVertexServer,
  type FakeVertexServerOptions,
  startFakeVertexServer,
} from "./server.js";
export {
  DEFAULT_VERTEX_BASE_MODELS,
  type FakeStorageObject,
  FakeVertexService,
  type FakeVertexServiceOptions,
} from "./service.js";
