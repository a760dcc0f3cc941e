import { inspect } from "node:util";
import { delay, HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AbortedError,
  AlreadyExistsError,
  type ApiError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  ConnectionError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServerError,
  TimeoutError,
  UnavailableError,
} from "../../src/core/errors.js";
import { AccessTokenAuth, ApiKeyAuth } from "../../src/remote/auth.js";
import { HttpClient, type HttpClientOptions } from "../../src/remote/http.js";

const BASE = "https://api.test";
const KEY = "AIzaSy-test-secret-key-1234567890";

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function client(options: Partial<HttpClientOptions> = {}): HttpClient {
  return new HttpClient({
    baseUrl: BASE,
    apiVersion: "v1beta",
    auth: new ApiKeyAuth(KEY),
    random: () => 0,
    ...options,
  });
}

function googleError(code: number, status: string, message: string, details: unknown[] = []) {
  return { error: { code, status, message, details } };
}

/** Answers with each response in turn (the last one repeats) and counts calls. */
function sequence(path: string, responses: (() => Response | Promise<Response>)[]) {
  const calls = { count: 0, requests: [] as Request[] };
  server.use(
    http.all(`${BASE}${path}`, ({ request }) => {
      calls.requests.push(request.clone());
      const respond = responses[Math.min(calls.count, responses.length - 1)] as () => Response;
      calls.count++;
      return respond();
    }),
  );
  return calls;
}

const ok = () => HttpResponse.json({ ok: true });

describe("HttpClient requests", () => {
  it("sends the API key only in x-goog-api-key, JSON in and out", async () => {
    const calls = sequence("/v1beta/tunedModels", [() => HttpResponse.json({ tunedModels: [] })]);
    const body = await client().request({
      method: "POST",
      path: "tunedModels",
      query: { tunedModelId: "abc", skipped: undefined },
      body: { displayName: "x" },
    });
    expect(body).toEqual({ tunedModels: [] });
    const request = calls.requests[0] as Request;
    expect(request.headers.get("x-goog-api-key")).toBe(KEY);
    expect(request.headers.get("content-type")).toBe("application/json");
    expect(request.url).toBe(`${BASE}/v1beta/tunedModels?tunedModelId=abc`);
    expect(request.url).not.toContain(KEY);
    expect(await request.json()).toEqual({ displayName: "x" });
  });

  it("returns {} for an empty body (DELETE)", async () => {
    sequence("/v1beta/tunedModels/a", [() => new HttpResponse(null, { status: 200 })]);
    await expect(client().request({ method: "DELETE", path: "tunedModels/a" })).resolves.toEqual(
      {},
    );
  });

  it("uses a per-request API version (cancel lives under v1)", async () => {
    const calls = sequence("/v1/tunedModels/a/operations/b:cancel", [ok]);
    await client().request({
      method: "POST",
      path: "tunedModels/a/operations/b:cancel",
      apiVersion: "v1",
      body: {},
    });
    expect(calls.count).toBe(1);
  });

  it("sends an OAuth token as Bearer plus x-goog-user-project, asking the provider each time", async () => {
    let minted = 0;
    const auth = new AccessTokenAuth(() => `ya29.token-${++minted}`, "quota-project");
    const calls = sequence("/v1beta/tunedModels", [ok]);
    const http = client({ auth });
    await http.request({ method: "GET", path: "tunedModels" });
    await http.request({ method: "GET", path: "tunedModels" });
    expect(calls.requests.map((r) => r.headers.get("authorization"))).toEqual([
      "Bearer ya29.token-1",
      "Bearer ya29.token-2",
    ]);
    expect(calls.requests[0]?.headers.get("x-goog-user-project")).toBe("quota-project");
    expect(calls.requests[0]?.headers.get("x-goog-api-key")).toBeNull();
  });
});

describe("HttpClient retries", () => {
  it("survives a 429 burst, waiting at least what Retry-After asks", async () => {
    const tooMany = () =>
      HttpResponse.json(googleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), {
        status: 429,
        headers: { "retry-after": "0.1" },
      });
    const calls = sequence("/v1beta/models", [tooMany, tooMany, ok]);
    const started = Date.now();
    await expect(client().request({ method: "GET", path: "models" })).resolves.toEqual({
      ok: true,
    });
    expect(calls.count).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it("retries 503s and then gives up with UnavailableError after maxRetries", async () => {
    const unavailable = () =>
      HttpResponse.json(googleError(503, "UNAVAILABLE", "The model is overloaded"), {
        status: 503,
      });
    const calls = sequence("/v1beta/models", [unavailable]);
    const error = await client({ maxRetries: 2 })
      .request({ method: "GET", path: "models" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(calls.count).toBe(3);
  });

  it("retries 500, 502, 504 and 408", async () => {
    for (const status of [500, 502, 504, 408]) {
      const calls = sequence("/v1beta/models", [() => new HttpResponse("boom", { status }), ok]);
      await client().request({ method: "GET", path: "models" });
      expect(calls.count).toBe(2);
      server.resetHandlers();
    }
  });

  it("retries a connection reset", async () => {
    const calls = sequence("/v1beta/models", [() => HttpResponse.error(), ok]);
    await expect(client().request({ method: "GET", path: "models" })).resolves.toEqual({
      ok: true,
    });
    expect(calls.count).toBe(2);
  });

  it("reports a connection that never answers as ConnectionError", async () => {
    sequence("/v1beta/models", [() => HttpResponse.error()]);
    const error = await client({ maxRetries: 1 })
      .request({ method: "GET", path: "models" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toContain(
      "GET /v1beta/models failed before an HTTP response arrived",
    );
  });

  it("does not retry a 400", async () => {
    const calls = sequence("/v1beta/models", [
      () => HttpResponse.json(googleError(400, "INVALID_ARGUMENT", "bad field"), { status: 400 }),
    ]);
    await expect(client().request({ method: "GET", path: "models" })).rejects.toBeInstanceOf(
      BadRequestError,
    );
    expect(calls.count).toBe(1);
  });

  it("does not retry a POST unless the caller says it is safe", async () => {
    const calls = sequence("/v1beta/tunedModels", [
      () => new HttpResponse("busy", { status: 503 }),
    ]);
    await expect(
      client().request({ method: "POST", path: "tunedModels", body: {} }),
    ).rejects.toBeInstanceOf(UnavailableError);
    expect(calls.count).toBe(1);
  });

  it("fails at once when Retry-After asks for more than the cap", async () => {
    const calls = sequence("/v1beta/models", [
      () =>
        HttpResponse.json(googleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), {
          status: 429,
          headers: { "retry-after": "3600" },
        }),
    ]);
    const started = Date.now();
    const error = await client({ maxRetryAfterMs: 1_000 })
      .request({ method: "GET", path: "models" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfterMs).toBe(3_600_000);
    expect(calls.count).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("reads google.rpc.RetryInfo when there is no Retry-After header", async () => {
    const calls = sequence("/v1beta/models", [
      () =>
        HttpResponse.json(
          googleError(429, "RESOURCE_EXHAUSTED", "Quota exceeded", [
            { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "0.05s" },
          ]),
          { status: 429 },
        ),
      ok,
    ]);
    await client().request({ method: "GET", path: "models" });
    expect(calls.count).toBe(2);
  });

  it("stops at once when the caller aborts during a backoff sleep", async () => {
    sequence("/v1beta/models", [
      () => new HttpResponse("busy", { status: 503, headers: { "retry-after": "30" } }),
    ]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const error = await client()
      .request({ method: "GET", path: "models", signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("stops at once when the caller aborts during a request", async () => {
    sequence("/v1beta/models", [
      async () => {
        await delay(5_000);
        return ok();
      },
    ]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await expect(
      client().request({ method: "GET", path: "models", signal: controller.signal }),
    ).rejects.toBeInstanceOf(AbortedError);
  });

  it("times out a slow attempt, retries it, then reports TimeoutError", async () => {
    const calls = sequence("/v1beta/models", [
      async () => {
        await delay(2_000);
        return ok();
      },
    ]);
    const error = await client({ timeoutMs: 50, maxRetries: 1 })
      .request({ method: "GET", path: "models" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(calls.count).toBe(2);
  });

  it("gives up when the overall deadline passes", async () => {
    sequence("/v1beta/models", [
      () => new HttpResponse("busy", { status: 503, headers: { "retry-after": "1" } }),
    ]);
    const error = await client({ deadlineMs: 300, maxRetries: 10 })
      .request({ method: "GET", path: "models" })
      .catch((e: unknown) => e);
    // The next sleep would pass the deadline: the last error is thrown rather than waiting.
    expect(error).toBeInstanceOf(UnavailableError);
  });
});

describe("google.rpc.Status → typed errors", () => {
  const cases: [number, string, string | undefined, new (...args: never[]) => ApiError][] = [
    [400, "INVALID_ARGUMENT", undefined, BadRequestError],
    [400, "FAILED_PRECONDITION", undefined, BadRequestError],
    [400, "INVALID_ARGUMENT", "API_KEY_INVALID", AuthenticationError],
    [401, "UNAUTHENTICATED", undefined, AuthenticationError],
    [403, "PERMISSION_DENIED", undefined, PermissionDeniedError],
    [404, "NOT_FOUND", undefined, NotFoundError],
    [409, "ALREADY_EXISTS", undefined, AlreadyExistsError],
    [409, "ABORTED", undefined, ConflictError],
    [429, "RESOURCE_EXHAUSTED", undefined, RateLimitError],
    [500, "INTERNAL", undefined, ServerError],
    [501, "UNIMPLEMENTED", undefined, ServerError],
    [503, "UNAVAILABLE", undefined, UnavailableError],
    [504, "DEADLINE_EXCEEDED", undefined, UnavailableError],
  ];
  for (const [code, status, reason, cls] of cases) {
    it(`${code} ${status}${reason ? ` (${reason})` : ""} → ${cls.name}`, async () => {
      const details = reason
        ? [
            {
              "@type": "type.googleapis.com/google.rpc.ErrorInfo",
              reason,
              domain: "googleapis.com",
            },
          ]
        : [];
      sequence("/v1beta/things/x", [
        () =>
          HttpResponse.json(googleError(code, status, "server says no", details), { status: code }),
      ]);
      const error = (await client({ maxRetries: 0 })
        .request({ method: "GET", path: "things/x" })
        .catch((e: unknown) => e)) as ApiError;
      expect(error).toBeInstanceOf(cls);
      expect(error.httpStatus).toBe(code);
      expect(error.status).toBe(status);
      expect(error.reason).toBe(reason);
      expect(error.details).toEqual(details);
      expect(error.message).toContain("GET /v1beta/things/x failed: server says no");
      expect(error.message).toContain(`HTTP ${code} ${status}`);
    });
  }

  it("explains API key vs OAuth on 403 insufficient authentication scopes", async () => {
    sequence("/v1beta/tunedModels", [
      () =>
        HttpResponse.json(
          googleError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes."),
          { status: 403 },
        ),
    ]);
    const error = (await client()
      .request({ method: "GET", path: "tunedModels" })
      .catch((e: unknown) => e)) as PermissionDeniedError;
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect(error.hint).toMatch(/API key has no scopes/);
    expect(error.message).toMatch(/OAuth access token/);
  });

  it("lets a backend add its own hints", async () => {
    sequence("/v1beta/things/x", [
      () => HttpResponse.json(googleError(404, "NOT_FOUND", "nope"), { status: 404 }),
    ]);
    const error = (await client({ errorHints: () => "try the other service" })
      .request({ method: "GET", path: "things/x" })
      .catch((e: unknown) => e)) as NotFoundError;
    expect(error.hint).toBe("try the other service");
    expect(error.message).toContain("try the other service");
  });

  it("copes with a body that is not Google's shape", async () => {
    sequence("/v1beta/things/x", [
      () => new HttpResponse("<html>Bad Gateway</html>", { status: 502 }),
    ]);
    const error = (await client({ maxRetries: 0 })
      .request({ method: "GET", path: "things/x" })
      .catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error.status).toBeUndefined();
    expect(error.message).toContain("Bad Gateway");
  });
});

describe("privacy: the API key never leaks", () => {
  it("scrubs a key the server echoes in message and details", async () => {
    const lines: string[] = [];
    const logger = { debug: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    sequence("/v1beta/things/x", [
      () =>
        HttpResponse.json(
          googleError(503, "UNAVAILABLE", `overloaded for key ${KEY}`, [
            {
              "@type": "type.googleapis.com/google.rpc.ErrorInfo",
              reason: "X",
              metadata: { key: KEY, url: `https://h/x?key=${KEY}` },
            },
          ]),
          { status: 503 },
        ),
    ]);
    const error = (await client({ logger, maxRetries: 1 })
      .request({ method: "GET", path: "things/x" })
      .catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(UnavailableError);
    for (const text of [
      error.message,
      JSON.stringify(error),
      inspect(error, { depth: 10 }),
      String(error.stack),
      ...lines,
    ]) {
      expect(text).not.toContain(KEY);
    }
    expect(lines.length).toBeGreaterThan(0);
  });

  it("scrubs the key from a low-level error's message and its cause chain", async () => {
    const failingFetch = async () => {
      throw new TypeError("fetch failed", {
        cause: new Error(`socket hang up (header x-goog-api-key: ${KEY})`),
      });
    };
    const error = (await client({ fetch: failingFetch, maxRetries: 0 })
      .request({ method: "GET", path: "things/x" })
      .catch((e: unknown) => e)) as ConnectionError;
    expect(error).toBeInstanceOf(ConnectionError);
    const texts = [
      error.message,
      JSON.stringify(error),
      inspect(error, { depth: 10 }),
      String((error.cause as Error).message),
      String(((error.cause as Error).cause as Error).message),
    ];
    for (const text of texts) expect(text).not.toContain(KEY);
  });

  it("keeps the key out of inspect() and JSON of the client and its auth", () => {
    const auth = new ApiKeyAuth(KEY);
    const http = client({ auth });
    expect(inspect(http, { depth: 10 })).not.toContain(KEY);
    expect(inspect(auth, { depth: 10 })).not.toContain(KEY);
    expect(JSON.stringify(auth)).not.toContain(KEY);
    expect(http.url({ path: "tunedModels" })).not.toContain(KEY);
  });

  it("scrubs OAuth tokens too", async () => {
    const token = "ya29.super-secret-token";
    sequence("/v1beta/x", [
      () =>
        HttpResponse.json(googleError(401, "UNAUTHENTICATED", `bad token ${token}`), {
          status: 401,
        }),
    ]);
    const error = (await client({ auth: new AccessTokenAuth(async () => ({ token })) })
      .request({ method: "GET", path: "x" })
      .catch((e: unknown) => e)) as AuthenticationError;
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(`${error.message} ${JSON.stringify(error)} ${inspect(error)}`).not.toContain(token);
  });
});
