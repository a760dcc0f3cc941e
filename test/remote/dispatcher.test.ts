/** The HTTP module dispatches through an injected undici dispatcher (no msw in this file). */
import { Agent, MockAgent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { ApiKeyAuth } from "../../src/remote/auth.js";
import { HttpClient, sharedDispatcher } from "../../src/remote/http.js";

const KEY = "AIzaSy-dispatcher-test-key";
let mock: MockAgent | undefined;
afterEach(async () => {
  await mock?.close();
  mock = undefined;
});

describe("undici dispatcher", () => {
  it("sends through an injected dispatcher (e.g. a MockAgent in tests)", async () => {
    mock = new MockAgent();
    mock.disableNetConnect();
    mock
      .get("https://api.test")
      .intercept({
        path: "/v1beta/tunedModels?pageSize=1",
        method: "GET",
        headers: { "x-goog-api-key": KEY },
      })
      .reply(200, { tunedModels: [] });
    const http = new HttpClient({
      baseUrl: "https://api.test",
      apiVersion: "v1beta",
      auth: new ApiKeyAuth(KEY),
      dispatcher: mock,
    });
    await expect(
      http.request({ method: "GET", path: "tunedModels", query: { pageSize: 1 } }),
    ).resolves.toEqual({
      tunedModels: [],
    });
    mock.assertNoPendingInterceptors();
  });

  it("retries through the dispatcher too", async () => {
    mock = new MockAgent();
    mock.disableNetConnect();
    const pool = mock.get("https://api.test");
    pool
      .intercept({ path: "/v1beta/x", method: "GET" })
      .reply(503, { error: { code: 503, status: "UNAVAILABLE" } });
    pool.intercept({ path: "/v1beta/x", method: "GET" }).reply(200, { ok: 1 });
    const http = new HttpClient({
      baseUrl: "https://api.test",
      apiVersion: "v1beta",
      auth: new ApiKeyAuth(KEY),
      dispatcher: mock,
      initialRetryDelayMs: 1,
    });
    await expect(http.request({ method: "GET", path: "x" })).resolves.toEqual({ ok: 1 });
  });

  it("shares one keep-alive Agent by default", () => {
    expect(sharedDispatcher()).toBeInstanceOf(Agent);
    expect(sharedDispatcher()).toBe(sharedDispatcher());
  });
});
