/** msw 2 request handlers for the fake Gemini API (msw is loaded on first use). */
import { fakeServiceHandler, loadMsw, type MswHandler } from "../shared/msw.js";
import type { FakeGeminiService } from "./service.js";

/** The Gemini API's public base URL. */
export const GEMINI_BASE_URL = "https://generativelanguage.googleapis.com";

/** Options of {@link createFakeGeminiHandlers}. */
export interface FakeGeminiHandlersOptions {
  /** Which origin (and optional path prefix) to intercept. @default GEMINI_BASE_URL */
  baseUrl?: string;
}

/**
 * Build msw handlers that answer every request under `baseUrl` from `service`.
 * msw (an optional peer dependency, ^2.15) is loaded on the first call.
 *
 * @example
 * ```ts
 * import { setupServer } from "msw/node";
 * import { FakeGeminiService, createFakeGeminiHandlers } from "tunekit/testing";
 *
 * const service = new FakeGeminiService({ tuningEnabled: true });
 * const server = setupServer(...createFakeGeminiHandlers(service));
 * server.listen({ onUnhandledRequest: "error" });
 * ```
 */
export function createFakeGeminiHandlers(
  service: FakeGeminiService,
  options: FakeGeminiHandlersOptions = {},
): MswHandler[] {
  const msw = loadMsw("createFakeGeminiHandlers", "startFakeGeminiServer");
  const baseUrl = (options.baseUrl ?? GEMINI_BASE_URL).replace(/\/+$/, "");
  return [fakeServiceHandler(msw, `${baseUrl}/*`, service)];
}
