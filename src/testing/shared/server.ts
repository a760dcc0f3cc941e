/**
 * @internal A fake service behind a real `node:http` server on 127.0.0.1, so clients in any
 * language (and code that bypasses msw, like `undici.request`) can use it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FakeHttpHandler } from "./msw.js";

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
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
