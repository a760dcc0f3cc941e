/**
 * The fake service behind a real `node:http` server on 127.0.0.1, so clients in any language
 * (and code that bypasses msw, like `undici.request`) can use it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FakeHttpHandler } from "./msw.js";
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

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
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

/** @internal Serves any fake service's `handle` on a real HTTP server. */
export async function listenFake(
  service: FakeHttpHandler,
  port: number,
  host: string,
): Promise<{ url: string; port: number; close(): Promise<void> }> {
  let baseUrl = "";

  const onRequest = async (request: IncomingMessage, response: ServerResponse) => {
    try {
      const bytes = await readBody(request);
      const result = await service.handle({
        method: request.method ?? "GET",
        url: `${baseUrl}${request.url ?? "/"}`,
        headers: request.headers,
        body: bytes.toString("utf8"),
        bodyBytes: bytes,
      });
      if (result.kind === "network-error") {
        request.socket.destroy();
        return;
      }
      response.writeHead(result.status, result.headers);
      response.end(result.body);
    } catch {
      request.socket.destroy();
    }
  };

  const server = createServer((request, response) => {
    void onRequest(request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  baseUrl = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;

  return {
    url: baseUrl,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
  };
}
