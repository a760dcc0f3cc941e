/**
 * GeminiTuner specs with small hand-written msw handlers: behaviours the fake service does not
 * exercise (partial metadata, auth choices, cancel bounds, lost deletes).
 */
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AbortedError,
  ConnectionError,
  InvalidOptionError,
  InvalidResponseError,
  NotFoundError,
  PermissionDeniedError,
  TimeoutError,
  TuningFailedError,
  UnsupportedOptionError,
} from "../../src/core/errors.js";
import { TEMPLATE_MARKER } from "../../src/gemini/template.js";
import { GeminiTuner } from "../../src/gemini/tuner.js";
import type { WireOperation } from "../../src/gemini/wire.js";
import { API_KEY, collect, incrementDataset, TUNABLE_BASE, testTuner } from "./helpers.js";

const BASE = "https://generativelanguage.googleapis.com";
const server = setupServer();
const seen: Request[] = [];
beforeAll(() => {
  server.listen({ onUnhandledRequest: "error" });
  server.events.on("request:start", ({ request }) => {
    seen.push(request.clone());
  });
});
afterEach(() => {
  server.resetHandlers();
  seen.length = 0;
});
afterAll(() => server.close());

const MODEL = "tunedModels/unit-model";
const OP = `${MODEL}/operations/op-1`;
const tunable = () =>
  http.get(`${BASE}/v1beta/models/:id`, () =>
    HttpResponse.json({
      name: TUNABLE_BASE,
      supportedGenerationMethods: ["generateContent", "createTunedModel"],
    }),
  );
const request = (overrides: Record<string, unknown> = {}) => ({
  baseModel: TUNABLE_BASE,
  dataset: incrementDataset(20),
  gemini: { tunedModelId: "unit-model" },
  ...overrides,
});

/** Serves `ops` in turn for GET of the operation (the last repeats). */
function operationSequence(ops: WireOperation[]) {
  let i = 0;
  return http.get(`${BASE}/v1beta/${OP}`, () =>
    HttpResponse.json(ops[Math.min(i++, ops.length - 1)]),
  );
}

describe("credentials", () => {
  it("reads GEMINI_API_KEY, then GOOGLE_API_KEY, and explains when neither is set", async () => {
    server.use(tunable());
    await new GeminiTuner({
      env: { GEMINI_API_KEY: "gemini-key", GOOGLE_API_KEY: "google-key" },
    }).checkTunable("x");
    await new GeminiTuner({ env: { GOOGLE_API_KEY: "google-key" } }).checkTunable("x");
    expect(seen.map((r) => r.headers.get("x-goog-api-key"))).toEqual(["gemini-key", "google-key"]);
    expect(() => new GeminiTuner({ env: {} })).toThrow(/GEMINI_API_KEY/);
  });

  it("checks numeric options when constructed", () => {
    expect(() => testTuner({ maxRetries: -1 })).toThrow(InvalidOptionError);
    expect(() => testTuner({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => testTuner({ pollMultiplier: 0.5 })).toThrow(InvalidOptionError);
  });

  it("sends an OAuth token as Bearer with the quota project", async () => {
    server.use(tunable());
    await new GeminiTuner({
      accessToken: async () => "ya29.abc",
      quotaProject: "proj",
      env: {},
    }).checkTunable("x");
    expect(seen[0]?.headers.get("authorization")).toBe("Bearer ya29.abc");
    expect(seen[0]?.headers.get("x-goog-user-project")).toBe("proj");
    expect(seen[0]?.headers.get("x-goog-api-key")).toBeNull();
  });

  it("explains the tuning scope on 403 insufficient authentication scopes", async () => {
    server.use(
      http.get(`${BASE}/v1beta/tunedModels`, () =>
        HttpResponse.json(
          {
            error: {
              code: 403,
              status: "PERMISSION_DENIED",
              message: "Request had insufficient authentication scopes.",
            },
          },
          { status: 403 },
        ),
      ),
    );
    const error = await testTuner()
      .listModels()
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as Error).message).toContain("generative-language.tuning");
    expect((error as Error).message).toContain("API keys carry no scopes");
  });
});

describe("tune: checks before any request", () => {
  it("rejects a validation set, which the Gemini API has no field for", async () => {
    await expect(
      testTuner().tune(request({ validation: incrementDataset(20) })),
    ).rejects.toBeInstanceOf(UnsupportedOptionError);
    await expect(
      testTuner().tune(request({ gemini: { temperature: 1.5 } })),
    ).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(
      testTuner().tune(request({ dataset: [{ input: "a", output: "b" }] })),
    ).rejects.toBeInstanceOf(InvalidOptionError);
    expect(seen).toEqual([]);
  });

  it("skips the preflight with gemini.skipPreflight and sends the camelCase body", async () => {
    server.use(
      http.post(`${BASE}/v1beta/tunedModels`, () =>
        HttpResponse.json({ name: OP, metadata: { tunedModel: MODEL, totalSteps: 5 } }),
      ),
    );
    const job = await testTuner().tune(
      request({
        displayName: "Unit",
        description: "desc",
        hyperparameters: { learningRateMultiplier: 2 },
        gemini: {
          tunedModelId: "unit-model",
          skipPreflight: true,
          temperature: 0.5,
          topP: 0.9,
          topK: 10,
        },
      }),
    );
    expect(
      seen.map((r) => `${r.method} ${new URL(r.url).pathname}${new URL(r.url).search}`),
    ).toEqual(["POST /v1beta/tunedModels?tunedModelId=unit-model"]);
    const body = (await seen[0]?.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      displayName: "Unit",
      // The user's text, then the metadata line with this call's request id.
      description: expect.stringMatching(
        new RegExp(`^desc\\n\\n${TEMPLATE_MARKER}\\{"v":1,"request":"[a-z0-9]{20}"\\}$`),
      ),
      baseModel: TUNABLE_BASE,
      temperature: 0.5,
      topP: 0.9,
      topK: 10,
      tuningTask: { hyperparameters: { learningRateMultiplier: 2 } },
    });
    // Metadata early in a run carries only totalSteps: nothing else is invented.
    expect(job.progress()).toEqual({ completedSteps: 0, totalSteps: 5, snapshots: [] });
    job.detach();
  });

  it("tunes from a tuned model through tunedModelSource (no base-model preflight)", async () => {
    server.use(http.post(`${BASE}/v1beta/tunedModels`, () => HttpResponse.json({ name: OP })));
    const job = await testTuner().tune(request({ baseModel: "tunedModels/parent" }));
    const body = (await seen[0]?.json()) as Record<string, unknown>;
    expect(body.tunedModelSource).toEqual({ tunedModel: "tunedModels/parent" });
    expect(body.baseModel).toBeUndefined();
    job.detach();
  });
});

describe("tune: a create that never gets an answer", () => {
  it("names the model that may exist and how to re-attach", async () => {
    let posts = 0;
    server.use(
      tunable(),
      http.post(`${BASE}/v1beta/tunedModels`, () => {
        posts++;
        return HttpResponse.error();
      }),
    );
    const error = await testTuner()
      .tune(request())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toContain('tuner.getJob("tunedModels/unit-model")');
    expect(posts).toBe(3); // safe to retry: the id is fixed
  });

  it("says the same when the caller aborts during the create", async () => {
    const controller = new AbortController();
    server.use(
      tunable(),
      http.post(`${BASE}/v1beta/tunedModels`, async () => {
        controller.abort();
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return HttpResponse.json({ name: OP });
      }),
    );
    const error = await testTuner()
      .tune(request({ signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect((error as Error).message).toContain("tunedModels/unit-model may exist");
  });
});

describe("watching", () => {
  it("copes with metadata fields that are absent, then finishes from a partial response", async () => {
    server.use(
      tunable(),
      http.post(`${BASE}/v1beta/tunedModels`, () => HttpResponse.json({ name: OP })),
      operationSequence([
        { name: OP, metadata: {} },
        { name: OP, metadata: { snapshots: [{ step: 1, meanLoss: 2.5 }] } },
        { name: OP, done: true, response: {} },
      ]),
      http.get(`${BASE}/v1beta/${MODEL}`, () =>
        HttpResponse.json({ name: MODEL, baseModel: TUNABLE_BASE, state: "ACTIVE" }),
      ),
    );
    const job = await testTuner().tune(request());
    const events = await collect(job.events());
    const model = await job.wait();
    expect(model.name).toBe(MODEL);
    expect(model.info().state).toBe("active");
    const snapshots = events.filter((e) => e.type === "snapshot");
    expect(snapshots).toEqual([
      expect.objectContaining({ snapshot: { step: 1, epoch: 0, meanLoss: 2.5, computeTime: "" } }),
    ]);
  });

  it("fails the job with a re-attach hint when polling keeps being refused", async () => {
    server.use(
      tunable(),
      http.post(`${BASE}/v1beta/tunedModels`, () => HttpResponse.json({ name: OP })),
      http.get(`${BASE}/v1beta/${OP}`, () =>
        HttpResponse.json(
          { error: { code: 403, status: "PERMISSION_DENIED", message: "no" } },
          { status: 403 },
        ),
      ),
    );
    const job = await testTuner().tune(request());
    const error = await job.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TuningFailedError);
    expect((error as Error).message).toContain("tuner.getJob");
  });
});

describe("cancel", () => {
  it("gives up after cancelTimeoutMs with a TimeoutError that explains best-effort cancel", async () => {
    server.use(
      tunable(),
      http.post(`${BASE}/v1beta/tunedModels`, () => HttpResponse.json({ name: OP })),
      http.post(`${BASE}/v1/${OP}:cancel`, () => HttpResponse.json({})),
      operationSequence([{ name: OP, metadata: { totalSteps: 10, completedSteps: 1 } }]),
    );
    const job = await testTuner({ cancelTimeoutMs: 100 }).tune(request());
    const error = await job.cancel().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as Error).message).toMatch(/best-effort/);
    expect(job.state()).toBe("running");
  });

  it("resolves when the job finished before the cancel took effect", async () => {
    server.use(
      tunable(),
      http.post(`${BASE}/v1beta/tunedModels`, () => HttpResponse.json({ name: OP })),
      http.post(`${BASE}/v1/${OP}:cancel`, () => HttpResponse.json({})),
      operationSequence([
        {
          name: OP,
          done: true,
          response: { name: MODEL, baseModel: TUNABLE_BASE, state: "ACTIVE" },
        },
      ]),
    );
    const job = await testTuner().tune(request());
    await job.cancel();
    expect(job.state()).toBe("succeeded");
  });
});

describe("management", () => {
  it("treats a 404 on a retried delete (first answer lost) as done", async () => {
    let calls = 0;
    server.use(
      http.delete(`${BASE}/v1beta/${MODEL}`, () =>
        ++calls === 1
          ? HttpResponse.error()
          : HttpResponse.json(
              { error: { code: 404, status: "NOT_FOUND", message: "gone" } },
              { status: 404 },
            ),
      ),
    );
    await testTuner().deleteModel(MODEL);
    expect(calls).toBe(2);
  });

  it("checks list options", () => {
    expect(() => testTuner().listModels({ pageSize: 0 })).toThrow(InvalidOptionError);
    expect(() => testTuner().listModels({ pageSize: 1001 })).toThrow(InvalidOptionError);
  });
});

describe("TunedModel.generate checks", () => {
  const modelJson = {
    name: MODEL,
    baseModel: TUNABLE_BASE,
    state: "ACTIVE",
    description: 'tunekit-template:{"v":1,"instruction":"Be nice."}',
  };

  it("refuses non-text input, over-long prompts, JSON mode and system instructions before sending", async () => {
    server.use(http.get(`${BASE}/v1beta/${MODEL}`, () => HttpResponse.json(modelJson)));
    const model = await testTuner().getModel(MODEL);
    seen.length = 0;
    await expect(model.generate(42 as unknown as string)).rejects.toThrow(/text input only/);
    await expect(model.generate("x".repeat(40_000))).rejects.toThrow(/at most 40,000/);
    await expect(model.generate("hi", { responseMimeType: "application/json" })).rejects.toThrow(
      /JSON mode/,
    );
    await expect(model.generate("hi", { responseSchema: {} })).rejects.toBeInstanceOf(
      UnsupportedOptionError,
    );
    await expect(model.generate("hi", { systemInstruction: "x" })).rejects.toThrow(
      /system instructions/,
    );
    await expect(model.generate("hi", { temperature: -1 })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    expect(seen).toEqual([]);
  });

  it("sends only the sampling options given, and lets a call override or bypass the template", async () => {
    const bodies: unknown[] = [];
    server.use(
      http.get(`${BASE}/v1beta/${MODEL}`, () => HttpResponse.json(modelJson)),
      http.post(`${BASE}/v1beta/${MODEL}:generateContent`, async ({ request }) => {
        bodies.push(await request.json());
        return HttpResponse.json({
          candidates: [{ content: { role: "model", parts: [{ text: "ok" }] } }],
        });
      }),
    );
    const model = await testTuner().getModel(MODEL);
    await model.generate("a", { temperature: 0.1, maxOutputTokens: 5, stopSequences: ["\n"] });
    await model.generate("b", { instruction: "Be rude." });
    await model.generate("c", { template: null });
    expect(bodies).toEqual([
      {
        contents: [{ role: "user", parts: [{ text: "Be nice.\n\na" }] }],
        generationConfig: { temperature: 0.1, maxOutputTokens: 5, stopSequences: ["\n"] },
      },
      { contents: [{ role: "user", parts: [{ text: "Be rude.\n\nb" }] }] },
      { contents: [{ role: "user", parts: [{ text: "c" }] }] },
    ]);
  });

  it("explains a 404 from a tuned model that can no longer serve", async () => {
    server.use(
      http.get(`${BASE}/v1beta/${MODEL}`, () => HttpResponse.json(modelJson)),
      http.post(`${BASE}/v1beta/${MODEL}:generateContent`, () =>
        HttpResponse.json(
          {
            error: {
              code: 404,
              status: "NOT_FOUND",
              message: `${MODEL} is not found for API version v1beta, or is not supported for generateContent.`,
            },
          },
          { status: 404 },
        ),
      ),
    );
    const model = await testTuner().getModel(MODEL);
    const error = await model.generate("x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).hint).toMatch(/retired/);
  });

  it("reports a blocked prompt", async () => {
    server.use(
      http.get(`${BASE}/v1beta/${MODEL}`, () => HttpResponse.json(modelJson)),
      http.post(`${BASE}/v1beta/${MODEL}:generateContent`, () =>
        HttpResponse.json({ promptFeedback: { blockReason: "SAFETY" } }),
      ),
    );
    const model = await testTuner().getModel(MODEL);
    await expect(model.generate("x")).rejects.toThrow(InvalidResponseError);
    await expect(model.generate("x")).rejects.toThrow(/blocked \(SAFETY\)/);
  });
});

describe("privacy", () => {
  it("never puts the key in a URL", async () => {
    server.use(tunable());
    await testTuner().checkTunable("x");
    expect(seen[0]?.url).not.toContain(API_KEY);
    expect(seen[0]?.headers.get("x-goog-api-key")).toBe(API_KEY);
  });
});
