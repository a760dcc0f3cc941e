import { setupServer } from "msw/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createFakeGeminiHandlers,
  FakeGeminiService,
  type FakeGeminiServiceOptions,
  GEMINI_BASE_URL,
  startFakeGeminiServer,
} from "../../src/testing/index.js";
import { createBody, expectAllResponsesValid, KEY } from "./helpers.js";

// biome-ignore lint/suspicious/noExplicitAny: the tests read JSON responses field by field.
type Json = Record<string, any>;

const OPTIONS: FakeGeminiServiceOptions = { apiKey: KEY, tuningEnabled: true, stepsPerPoll: 10 };

/** One scripted session over real `fetch`; returns what the client observed. */
async function script(base: string, service: FakeGeminiService): Promise<unknown[]> {
  const seen: unknown[] = [];
  const send = async (method: string, path: string, body?: unknown, key = KEY) => {
    try {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { "x-goog-api-key": key, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      const type = response.headers.get("content-type") ?? "";
      const parsed = type.startsWith("application/json") ? JSON.parse(text) : text;
      seen.push({
        status: response.status,
        retryAfter: response.headers.get("retry-after"),
        type,
        body: parsed,
      });
      return parsed as Json;
    } catch (error) {
      seen.push({ networkError: (error as Error).name });
      return undefined;
    }
  };

  service.faults.rateLimit({ route: "createTunedModel", retryAfterSeconds: 2 });
  await send("POST", "/v1beta/tunedModels?tunedModelId=script", createBody());
  const op = (await send("POST", "/v1beta/tunedModels?tunedModelId=script", createBody()))!;
  await send("GET", `/v1/${op.name}`);
  await send("POST", "/v1beta/tunedModels/script:generateContent", {
    contents: [{ parts: [{ text: "3" }] }],
  });
  await send("GET", `/v1beta/${op.name}`);
  await send("GET", `/v1beta/${op.name}`);
  await send("GET", "/v1beta/tunedModels?pageSize=1");
  await send("PATCH", "/v1beta/tunedModels/script?updateMask=description", {
    description: "patched",
  });
  await send("POST", "/v1beta/tunedModels/script:generateContent", {
    contents: [{ parts: [{ text: "3" }] }],
  });
  await send("POST", "/v1beta/tunedModels/script:streamGenerateContent?alt=sse", {
    contents: [{ parts: [{ text: "never seen in training" }] }],
  });
  await send("POST", "/v1beta/tunedModels", { ...createBody(), bogus: true });
  service.faults.unavailable({ route: "getTunedModel", retryAfterSeconds: 1 });
  await send("GET", "/v1beta/tunedModels/script");
  service.faults.dropConnection({ route: "getTunedModel" });
  await send("GET", "/v1beta/tunedModels/script");
  service.faults.loseResponse();
  await send("POST", "/v1beta/tunedModels?tunedModelId=second", createBody());
  await send("POST", "/v1beta/tunedModels?tunedModelId=second", createBody());
  await send("GET", "/v1beta/tunedModels/second/operations");
  const ops = service.getTunedModel("second") === undefined ? undefined : service.listTunedModels();
  seen.push({ modelsAfterLostCreate: ops?.length });
  const secondOp = service.requests.find(
    (r) => r.route === "createTunedModel" && r.outcome === "response-lost",
  )!.response as Json;
  await send("POST", `/v1/${secondOp.name}:cancel`);
  await send("GET", `/v1/${secondOp.name}`);
  await send("DELETE", "/v1beta/tunedModels/second");
  await send("GET", "/v1beta/tunedModels", undefined, "wrong-key");
  return seen;
}

function logView(service: FakeGeminiService) {
  return service.requests.map(
    ({ seq, time, method, path, route, query, body, outcome, status, response }) => ({
      seq,
      time,
      method,
      path,
      route,
      query,
      body,
      outcome,
      status,
      response,
    }),
  );
}

describe("msw and the real HTTP server behave the same", () => {
  const mswService = new FakeGeminiService(OPTIONS);
  const msw = setupServer();

  beforeAll(async () => {
    msw.use(...createFakeGeminiHandlers(mswService));
    msw.listen({ onUnhandledRequest: "bypass" });
  });
  afterAll(() => msw.close());

  it("produces identical responses and logs for the same script", async () => {
    const viaMsw = await script(GEMINI_BASE_URL, mswService);

    const fake = await startFakeGeminiServer(OPTIONS);
    let viaHttp: unknown[];
    try {
      viaHttp = await script(fake.url, fake.service);
    } finally {
      await fake.close();
    }

    expect(viaHttp).toEqual(viaMsw);
    expect(logView(fake.service)).toEqual(logView(mswService));

    // Spot checks of what the script saw.
    const statuses = viaMsw.map((entry) => (entry as Json).status ?? (entry as Json).networkError);
    expect(statuses).toEqual([
      429,
      200,
      200,
      400,
      200,
      200,
      200,
      200,
      200,
      200,
      400,
      503,
      "TypeError",
      "TypeError",
      409,
      200,
      undefined,
      200,
      200,
      200,
      403,
    ]);
    expect((viaMsw[0] as Json).retryAfter).toBe("2");
    expect((viaMsw[8] as Json).body.candidates[0].content.parts[0].text).toBe("4");
    expect((viaMsw[9] as Json).type).toBe("text/event-stream");
    expect((viaMsw[16] as Json).modelsAfterLostCreate).toBe(2);
    expect(expectAllResponsesValid(mswService)).toBeGreaterThan(8);
    expect(expectAllResponsesValid(fake.service)).toBeGreaterThan(8);
  });

  it("serves a base URL with a path prefix through msw", async () => {
    const service = new FakeGeminiService({ ...OPTIONS, basePath: "/proxy" });
    msw.use(...createFakeGeminiHandlers(service, { baseUrl: "https://fake.test/proxy" }));
    const response = await fetch("https://fake.test/proxy/v1beta/models", {
      headers: { "x-goog-api-key": KEY },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Json).models.length).toBeGreaterThan(0);
  });
});

describe("startFakeGeminiServer", () => {
  it("listens on 127.0.0.1 with a random port and closes cleanly", async () => {
    const a = await startFakeGeminiServer();
    const b = await startFakeGeminiServer({ service: a.service });
    try {
      expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(a.port).not.toBe(b.port);
      expect(b.service).toBe(a.service);
      const response = await fetch(`${b.url}/v1beta/models`, {
        headers: { "x-goog-api-key": "test-api-key" },
      });
      expect(response.status).toBe(200);
      const unknown = await fetch(`${a.url}/nope`, {
        headers: { "x-goog-api-key": "test-api-key" },
      });
      expect(unknown.status).toBe(404);
    } finally {
      await a.close();
      await b.close();
    }
    await expect(fetch(`${a.url}/v1beta/models`)).rejects.toThrow();
  });

  it("delays responses for real", async () => {
    const fake = await startFakeGeminiServer();
    try {
      fake.service.faults.delay(120, { route: "listModels" });
      const started = performance.now();
      const response = await fetch(`${fake.url}/v1beta/models`, {
        headers: { "x-goog-api-key": "test-api-key" },
      });
      expect(response.status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    } finally {
      await fake.close();
    }
  });
});
