/**
 * msw 2 handlers for the fake Vertex AI + Cloud Storage service. msw (an optional peer
 * dependency) is loaded on first call, as for the Gemini fake.
 */
import { fakeServiceHandler, loadMsw, type MswHandler } from "../shared/msw.js";
import type { FakeVertexService } from "./service.js";

/** Every Vertex AI host: the global one and each regional `{location}-aiplatform.googleapis.com`. */
export const VERTEX_HOSTS_PATTERN = /^https:\/\/([a-z0-9-]+-)?aiplatform\.googleapis\.com\/.*/;

/** The Cloud Storage host. */
export const STORAGE_BASE_URL = "https://storage.googleapis.com";

/** Options of {@link createFakeVertexHandlers}. */
export interface FakeVertexHandlersOptions {
  /** Intercept this origin instead of every Vertex AI host. */
  baseUrl?: string;
  /** Intercept this origin instead of `https://storage.googleapis.com`. */
  storageBaseUrl?: string;
}

/**
 * msw handlers answering Vertex AI (every regional host) and Cloud Storage uploads from
 * `service`.
 *
 * @example
 * ```ts
 * import { setupServer } from "msw/node";
 * import { FakeVertexService, createFakeVertexHandlers } from "tunekit/testing";
 *
 * const service = new FakeVertexService();
 * const server = setupServer(...createFakeVertexHandlers(service));
 * server.listen({ onUnhandledRequest: "error" });
 * // new VertexTuner({ project: "p", accessToken: "test-access-token", stagingUri: "gs://b/x" })
 * ```
 */
export function createFakeVertexHandlers(
  service: FakeVertexService,
  options: FakeVertexHandlersOptions = {},
): MswHandler[] {
  const msw = loadMsw("createFakeVertexHandlers", "startFakeVertexServer");
  const vertex = options.baseUrl
    ? `${options.baseUrl.replace(/\/+$/, "")}/*`
    : VERTEX_HOSTS_PATTERN;
  const storage = `${(options.storageBaseUrl ?? STORAGE_BASE_URL).replace(/\/+$/, "")}/*`;
  return [fakeServiceHandler(msw, vertex, service), fakeServiceHandler(msw, storage, service)];
}
