/** The fake Vertex AI + Cloud Storage service behind a real HTTP server on 127.0.0.1. */
import { listenFake } from "../shared/server.js";
import { FakeVertexService, type FakeVertexServiceOptions } from "./service.js";

/** Options of {@link startFakeVertexServer}. */
export interface FakeVertexServerOptions extends FakeVertexServiceOptions {
  /** Serve this service instead of creating one from the other options. */
  service?: FakeVertexService;
  /** @default 0 (a random free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
}

/** A running fake server: use `url` as both the Vertex `baseUrl` and the `storageBaseUrl`. */
export interface FakeVertexServer {
  readonly url: string;
  readonly port: number;
  readonly service: FakeVertexService;
  close(): Promise<void>;
}

/**
 * Start the fake Vertex service on a real HTTP server. One server answers both the Vertex AI
 * paths (`/v1/projects/…`) and the Cloud Storage upload path (`/upload/storage/v1/…`).
 *
 * @example
 * ```ts
 * const fake = await startFakeVertexServer();
 * const tuner = new VertexTuner({
 *   project: "p", accessToken: "test-access-token", stagingUri: "gs://bucket/tuning",
 *   baseUrl: fake.url, storageBaseUrl: fake.url,
 * });
 * await fake.close();
 * ```
 */
export async function startFakeVertexServer(
  options: FakeVertexServerOptions = {},
): Promise<FakeVertexServer> {
  const { service: given, port = 0, host = "127.0.0.1", ...serviceOptions } = options;
  const service = given ?? new FakeVertexService(serviceOptions);
  const listening = await listenFake(service, port, host);
  return { ...listening, service };
}
