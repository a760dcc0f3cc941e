/** The fake Gemini API behind a real HTTP server on 127.0.0.1 (see `shared/server.ts`). */
import { listenFake } from "../shared/server.js";
import { FakeGeminiService, type FakeGeminiServiceOptions } from "./service.js";

/** Options of {@link startFakeGeminiServer}. */
export interface FakeGeminiServerOptions extends FakeGeminiServiceOptions {
  /** Serve this service instead of creating one from the other options. */
  service?: FakeGeminiService;
  /** @default 0 (a random free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
}

/** A running fake server. */
export interface FakeGeminiServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`. Use it as the client's baseUrl. */
  readonly url: string;
  readonly port: number;
  readonly service: FakeGeminiService;
  /** Stop listening and close every open connection. */
  close(): Promise<void>;
}

/**
 * Start the fake Gemini service on a real HTTP server.
 *
 * @example
 * ```ts
 * const fake = await startFakeGeminiServer({ apiKey: "k", tuningEnabled: true });
 * const res = await fetch(`${fake.url}/v1beta/tunedModels`, { headers: { "x-goog-api-key": "k" } });
 * await fake.close();
 * ```
 */
export async function startFakeGeminiServer(
  options: FakeGeminiServerOptions = {},
): Promise<FakeGeminiServer> {
  const { service: given, port = 0, host = "127.0.0.1", ...serviceOptions } = options;
  const service = given ?? new FakeGeminiService(serviceOptions);
  const listening = await listenFake(service, port, host);
  return { ...listening, service };
}
