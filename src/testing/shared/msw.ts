/**
 * @internal msw 2 glue shared by the fakes. msw is an optional peer dependency: it is loaded
 * here, on first use, and nowhere else, so users of the real HTTP server never need it.
 *
 * It is loaded with `require` (through `createRequire`), not `import()`: Jest cannot run a
 * dynamic `import()` from CommonJS without `--experimental-vm-modules`. msw recognises
 * handlers by shape, so handlers built by msw's CommonJS build work with an ESM `setupServer`.
 */
import { createRequire } from "node:module";
import type { FakeHttpRequest, FakeHttpResult } from "./http.js";

/**
 * An msw request handler (msw's `HttpHandler`), ready for `setupServer(...handlers)`.
 * Declared loosely on purpose: `tunekit/testing`'s public types must not import msw, an
 * optional peer dependency, so that a project without msw still type-checks.
 */
// biome-ignore lint/suspicious/noExplicitAny: msw's handler class cannot be named without importing msw
export type MswHandler = any;

/** Anything with the fake services' transport-independent `handle`. */
export interface FakeHttpHandler {
  handle(request: FakeHttpRequest): Promise<FakeHttpResult>;
}

/** @internal Loads msw (an optional peer dependency) or explains how to get it. */
export function loadMsw(caller: string, alternative: string): typeof import("msw") {
  try {
    return createRequire(import.meta.url)("msw") as typeof import("msw");
  } catch (error) {
    throw new Error(
      `tunekit/testing: ${caller} needs the optional peer dependency "msw" (^2.15.0). Install it with \`npm i -D msw\`, or use ${alternative}() instead.`,
      { cause: error },
    );
  }
}

/** @internal One msw handler answering every request matching `url` from `service`. */
export function fakeServiceHandler(
  msw: typeof import("msw"),
  url: string | RegExp,
  service: FakeHttpHandler,
): MswHandler {
  const { http, HttpResponse } = msw;
  return http.all(url, async ({ request }) => {
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const bytes = hasBody ? new Uint8Array(await request.arrayBuffer()) : undefined;
    const result = await service.handle({
      method: request.method,
      url: request.url,
      headers: request.headers,
      body: bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8"),
      bodyBytes: bytes,
    });
    if (result.kind === "network-error") return HttpResponse.error();
    return new HttpResponse(result.body, { status: result.status, headers: result.headers });
  });
}
