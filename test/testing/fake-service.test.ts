import { describe, expect, it } from "vitest";
import {
  checkRecordedTraffic,
  FakeGeminiService,
  TUNABLE_BASE_MODEL,
} from "../../src/testing/index.js";
import { call, createBody, examples, expectAllResponsesValid, KEY } from "./helpers.js";

// biome-ignore lint/suspicious/noExplicitAny: the tests read JSON responses field by field.
type Json = Record<string, any>;

function tunable(options: ConstructorParameters<typeof FakeGeminiService>[0] = {}) {
  return new FakeGeminiService({ tuningEnabled: true, ...options });
}

describe("base models", () => {
  it("lists none that supports createTunedModel by default, like the real API since May 2025", async () => {
    const service = new FakeGeminiService();
    const list = await call(service, "GET", "/v1beta/models");
    expect(list.status).toBe(200);
    const models = (list.json as Json).models as Json[];
    expect(models.length).toBeGreaterThan(0);
    for (const model of models)
      expect(model.supportedGenerationMethods).not.toContain("createTunedModel");
    const missing = await call(service, "GET", "/v1beta/models/gemini-1.5-flash-001-tuning");
    expect(missing.status).toBe(404);
    expect((missing.json as Json).error.status).toBe("NOT_FOUND");
    const create = await call(service, "POST", "/v1beta/tunedModels?tunedModelId=x1", createBody());
    expect(create.status).toBe(404);
    expectAllResponsesValid(service);
  });

  it("serves a tunable base model when tuning is enabled", async () => {
    const service = tunable();
    const model = await call(service, "GET", "/v1beta/models/gemini-1.5-flash-001-tuning");
    expect(model.status).toBe(200);
    expect((model.json as Json).supportedGenerationMethods).toContain("createTunedModel");
    const notTunable = await call(
      service,
      "POST",
      "/v1beta/tunedModels",
      createBody({ baseModel: "models/gemini-2.5-flash" }),
    );
    expect(notTunable.status).toBe(400);
    expectAllResponsesValid(service);
  });
});

describe("create → poll → ACTIVE", () => {
  it("advances in steps, reports decreasing snapshots and finishes ACTIVE", async () => {
    const service = tunable({ stepsPerPoll: 0 });
    const created = await call(
      service,
      "POST",
      "/v1beta/tunedModels?tunedModelId=num-gen",
      createBody(),
    );
    expect(created.status).toBe(200);
    const operation = created.json as Json;
    expect(operation.name).toMatch(/^tunedModels\/num-gen\/operations\/[a-z][a-z0-9]{11}$/);
    expect(operation.done).toBeUndefined();
    // 20 examples × 5 epochs / batch 4 = 25 steps; the create answer carries only these fields.
    expect(operation.metadata).toEqual({
      "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata",
      totalSteps: 25,
      tunedModel: "tunedModels/num-gen",
    });

    const model = await call(service, "GET", "/v1beta/tunedModels/num-gen");
    expect((model.json as Json).state).toBe("CREATING");

    service.tick(10);
    const mid = (await call(service, "GET", `/v1/${operation.name}`)).json as Json;
    expect(mid.done).toBeUndefined();
    expect(mid.metadata.completedSteps).toBe(10);
    expect(mid.metadata.completedPercent).toBe(40);
    expect(mid.metadata.snapshots).toHaveLength(10);

    service.advance(15_000);
    const done = (await call(service, "GET", `/v1beta/${operation.name}`)).json as Json;
    expect(done.done).toBe(true);
    expect(done.error).toBeUndefined();
    expect(done.metadata.completedSteps).toBe(25);
    expect(done.metadata.completedPercent).toBe(100);
    expect(done.response["@type"]).toBe(
      "type.googleapis.com/google.ai.generativelanguage.v1beta.TunedModel",
    );
    expect(done.response.state).toBe("ACTIVE");

    const snapshots = done.metadata.snapshots as Json[];
    expect(snapshots.map((s) => s.step)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    for (let i = 1; i < snapshots.length; i += 1) {
      expect(snapshots[i]!.meanLoss).toBeLessThan(snapshots[i - 1]!.meanLoss);
      expect(snapshots[i]!.epoch).toBeGreaterThanOrEqual(snapshots[i - 1]!.epoch);
    }
    expect(snapshots.at(-1)!.epoch).toBe(5);

    const final = (await call(service, "GET", "/v1beta/tunedModels/num-gen")).json as Json;
    expect(final.state).toBe("ACTIVE");
    expect(final.tuningTask.snapshots).toEqual(snapshots);
    expect(final.tuningTask.startTime).toBe("2026-01-01T00:00:00.000Z");
    expect(final.tuningTask.completeTime).toBe("2026-01-01T00:00:25.000Z");
    expect(final.tuningTask.hyperparameters).toEqual({
      epochCount: 5,
      batchSize: 4,
      learningRate: 0.001,
    });
    expect(final.tuningTask.trainingData).toBeUndefined();
    expect(final.temperature).toBe(TUNABLE_BASE_MODEL.temperature);
    expect(expectAllResponsesValid(service)).toBeGreaterThan(4);
  });

  it("advances N steps per poll in auto mode", async () => {
    const service = tunable({ stepsPerPoll: 10 });
    const op = (await call(service, "POST", "/v1beta/tunedModels", createBody())).json as Json;
    const seen: number[] = [];
    for (let poll = 0; poll < 10; poll += 1) {
      const current = (await call(service, "GET", `/v1/${op.name}`)).json as Json;
      seen.push(current.metadata.completedSteps);
      if (current.done) break;
    }
    expect(seen).toEqual([10, 20, 25]);
  });

  it("generates an id from the display name and fills default hyperparameters", async () => {
    const service = tunable();
    const body = createBody({ displayName: "Sentence Translator" });
    delete (body.tuningTask as Json).hyperparameters;
    const op = (await call(service, "POST", "/v1beta/tunedModels", body)).json as Json;
    expect(op.metadata.tunedModel).toMatch(/^tunedModels\/sentence-translator-[a-z0-9]{5}$/);
    const model = (await call(service, "GET", `/v1beta/${op.metadata.tunedModel}`)).json as Json;
    expect(model.tuningTask.hyperparameters).toEqual({
      epochCount: 5,
      batchSize: 4,
      learningRate: 0.0002,
    });
  });

  it("accepts proto (snake_case) field names like the real JSON parser", async () => {
    const service = tunable();
    const created = await call(service, "POST", "/v1beta/tunedModels?tunedModelId=snake", {
      display_name: "snake",
      base_model: "models/gemini-1.5-flash-001-tuning",
      tuning_task: {
        hyperparameters: { batch_size: 2, epoch_count: 5, learning_rate: 0.001 },
        training_data: { examples: { examples: [{ text_input: "1", output: "2" }] } },
      },
    });
    expect(created.status).toBe(200);
    expect((created.json as Json).metadata.totalSteps).toBe(3);
  });

  it("answers 409 ALREADY_EXISTS for an existing id and keeps one model", async () => {
    const service = tunable();
    expect(
      (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=dup", createBody())).status,
    ).toBe(200);
    const again = await call(service, "POST", "/v1beta/tunedModels?tunedModelId=dup", createBody());
    expect(again.status).toBe(409);
    expect(again.json).toEqual({
      error: {
        code: 409,
        message: "Tuned model tunedModels/dup already exists.",
        status: "ALREADY_EXISTS",
      },
    });
    expect(service.listTunedModels()).toHaveLength(1);
  });
});

describe("request validation", () => {
  it("rejects an unknown field with 400 INVALID_ARGUMENT and a BadRequest detail", async () => {
    const service = tunable();
    const body = createBody();
    (body.tuningTask as Json).hyperparameters.epochs = 3;
    const response = await call(service, "POST", "/v1beta/tunedModels", body);
    expect(response.status).toBe(400);
    expect(response.json).toEqual({
      error: {
        code: 400,
        message:
          "Invalid JSON payload received. Unknown name \"epochs\" at 'tuned_model.tuning_task.hyperparameters': Cannot find field.",
        status: "INVALID_ARGUMENT",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            fieldViolations: [
              {
                field: "tuned_model.tuning_task.hyperparameters",
                description:
                  "Invalid JSON payload received. Unknown name \"epochs\" at 'tuned_model.tuning_task.hyperparameters': Cannot find field.",
              },
            ],
          },
        ],
      },
    });
    expect(service.listTunedModels()).toHaveLength(0);
  });

  it("rejects both learningRate and learningRateMultiplier", async () => {
    const service = tunable();
    const body = createBody();
    (body.tuningTask as Json).hyperparameters.learningRateMultiplier = 1;
    const response = await call(service, "POST", "/v1beta/tunedModels", body);
    expect(response.status).toBe(400);
    const error = (response.json as Json).error;
    expect(error.status).toBe("INVALID_ARGUMENT");
    expect(error.message).toContain("learning_rate_option");
    expect(error.details[0]["@type"]).toBe("type.googleapis.com/google.rpc.BadRequest");
  });

  it("rejects missing required fields, wrong types and bad ids", async () => {
    const service = tunable();
    const noTask = await call(service, "POST", "/v1beta/tunedModels", {
      baseModel: TUNABLE_BASE_MODEL.name,
    });
    expect(noTask.status).toBe(400);
    expect((noTask.json as Json).error.details[0].fieldViolations[0].field).toBe(
      "tuned_model.tuning_task",
    );

    const noOutput = createBody();
    (noOutput.tuningTask as Json).trainingData.examples.examples = [{ textInput: "a" }];
    const missing = await call(service, "POST", "/v1beta/tunedModels", noOutput);
    expect(missing.status).toBe(400);
    expect((missing.json as Json).error.message).toContain("examples[0].output");

    const wrongType = createBody();
    (wrongType.tuningTask as Json).hyperparameters.epochCount = "five";
    expect((await call(service, "POST", "/v1beta/tunedModels", wrongType)).status).toBe(400);

    expect(
      (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=Bad_Id", createBody())).status,
    ).toBe(400);
    expect((await call(service, "POST", "/v1beta/tunedModels", "{not json")).status).toBe(400);
    expect(service.listTunedModels()).toHaveLength(0);
  });
});

describe("auth", () => {
  it("answers a wrong key with 403 PERMISSION_DENIED in Google's shape, never echoing the key", async () => {
    const service = tunable();
    const response = await call(service, "GET", "/v1beta/tunedModels", undefined, {
      "x-goog-api-key": "wrong-key-123",
    });
    expect(response.status).toBe(403);
    expect(response.json).toEqual({
      error: {
        code: 403,
        message: "Permission denied: the API key is not valid for this API.",
        status: "PERMISSION_DENIED",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "API_KEY_INVALID",
            domain: "googleapis.com",
            metadata: { service: "generativelanguage.googleapis.com" },
          },
        ],
      },
    });
    expect(response.text).not.toContain("wrong-key-123");
  });

  it("can answer a wrong key like the live API (400 API_KEY_INVALID), and a missing key with 403", async () => {
    const service = tunable({ wrongKeyResponse: "api-key-invalid" });
    const wrong = await call(service, "GET", "/v1beta/tunedModels", undefined, {
      "x-goog-api-key": "nope",
    });
    expect(wrong.status).toBe(400);
    expect((wrong.json as Json).error.message).toBe(
      "API key not valid. Please pass a valid API key.",
    );
    expect((wrong.json as Json).error.details[0].reason).toBe("API_KEY_INVALID");
    const none = await call(service, "GET", "/v1beta/tunedModels", undefined, {});
    expect(none.status).toBe(403);
    expect((none.json as Json).error.status).toBe("PERMISSION_DENIED");
  });

  it("accepts ?key= and bearer tokens when configured, and redacts secrets in the log", async () => {
    const service = tunable({ accessToken: "ya29.token", requireUserProject: true });
    expect(
      (await call(service, "GET", `/v1beta/tunedModels?key=${KEY}`, undefined, {})).status,
    ).toBe(200);
    const bearer = { authorization: "Bearer ya29.token", "x-goog-user-project": "proj" };
    expect((await call(service, "GET", "/v1beta/tunedModels", undefined, bearer)).status).toBe(200);
    const noProject = await call(service, "GET", "/v1beta/tunedModels", undefined, {
      authorization: "Bearer ya29.token",
    });
    expect(noProject.status).toBe(403);
    const badToken = await call(service, "GET", "/v1beta/tunedModels", undefined, {
      authorization: "Bearer old",
    });
    expect(badToken.status).toBe(401);
    expect((badToken.json as Json).error.status).toBe("UNAUTHENTICATED");
    await call(service, "GET", "/v1beta/tunedModels");
    const log = JSON.stringify(service.requests);
    expect(log).not.toContain(KEY);
    expect(log).not.toContain("ya29.token");
    expect(service.requests[0]!.query.key).toBe("[redacted]");
    expect(service.requests.at(-1)!.headers["x-goog-api-key"]).toBe("[redacted]");
  });
});

describe("cancel", () => {
  it("cancels on the v1 path: operation done with code 1, model FAILED", async () => {
    const service = tunable({ stepsPerPoll: 0 });
    const op = (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=c1", createBody()))
      .json as Json;
    service.tick(3);
    const v1beta = await call(service, "POST", `/v1beta/${op.name}:cancel`);
    expect(v1beta.status).toBe(404);
    const cancelled = await call(service, "POST", `/v1/${op.name}:cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toEqual({});
    service.tick(50);
    const after = (await call(service, "GET", `/v1/${op.name}`)).json as Json;
    expect(after.done).toBe(true);
    expect(after.error).toEqual({ code: 1, message: "Operation cancelled.", details: [] });
    expect(after.metadata.completedSteps).toBe(3);
    const model = (await call(service, "GET", "/v1beta/tunedModels/c1")).json as Json;
    expect(model.state).toBe("FAILED");
    // Cancelling a finished operation is a no-op.
    expect((await call(service, "POST", `/v1/${op.name}:cancel`)).status).toBe(200);
    expectAllResponsesValid(service);
  });

  it("cancels asynchronously with cancelLatencySteps, and can lose the race to completion", async () => {
    const service = tunable({ stepsPerPoll: 0, cancelLatencySteps: 2 });
    const op = (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=slow", createBody()))
      .json as Json;
    service.tick(3);
    expect((await call(service, "POST", `/v1/${op.name}:cancel`)).json).toEqual({});
    expect(((await call(service, "GET", `/v1/${op.name}`)).json as Json).done).toBeUndefined();
    service.tick(10);
    const after = (await call(service, "GET", `/v1/${op.name}`)).json as Json;
    expect(after).toMatchObject({
      done: true,
      error: { code: 1 },
      metadata: { completedSteps: 5 },
    });

    const late = (
      await call(service, "POST", "/v1beta/tunedModels?tunedModelId=late", createBody())
    ).json as Json;
    service.tick(24);
    await call(service, "POST", `/v1/${late.name}:cancel`);
    service.tick(5);
    expect(((await call(service, "GET", `/v1/${late.name}`)).json as Json).response.state).toBe(
      "ACTIVE",
    );
  });

  it("can also serve cancel on v1beta when asked", async () => {
    const service = tunable({ cancelOnV1beta: true });
    const op = (await call(service, "POST", "/v1beta/tunedModels", createBody())).json as Json;
    expect((await call(service, "POST", `/v1beta/${op.name}:cancel`)).status).toBe(200);
  });
});

describe("list, patch, delete, operations", () => {
  it("pages through 25 models in 3 pages and filters by text", async () => {
    const service = tunable();
    for (let i = 0; i < 25; i += 1) {
      service.seedTunedModel({
        id: `model-${i}`,
        displayName: i % 2 === 0 ? `even ${i}` : `odd ${i}`,
      });
    }
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const query = `pageSize=10${token === undefined ? "" : `&pageToken=${token}`}`;
      const page = (await call(service, "GET", `/v1beta/tunedModels?${query}`)).json as Json;
      names.push(...(page.tunedModels as Json[]).map((m) => m.name as string));
      token = page.nextPageToken;
      pages += 1;
    } while (token !== undefined);
    expect(pages).toBe(3);
    expect(names).toEqual(Array.from({ length: 25 }, (_, i) => `tunedModels/model-${i}`));

    const defaultPage = (await call(service, "GET", "/v1beta/tunedModels")).json as Json;
    expect(defaultPage.tunedModels).toHaveLength(10);
    const odd = (await call(service, "GET", "/v1beta/tunedModels?filter=odd&pageSize=100"))
      .json as Json;
    expect(odd.tunedModels).toHaveLength(12);
    expect(odd.nextPageToken).toBeUndefined();
    const mismatch = await call(
      service,
      "GET",
      `/v1beta/tunedModels?filter=even&pageToken=${defaultPage.nextPageToken}`,
    );
    expect(mismatch.status).toBe(400);
    expect((await call(service, "GET", "/v1beta/tunedModels?pageToken=garbage")).status).toBe(400);
    expectAllResponsesValid(service);
  });

  it("patches only the fields in updateMask and rejects immutable ones", async () => {
    const service = tunable();
    service.seedTunedModel({ id: "p1", displayName: "old", description: "keep" });
    const patched = await call(
      service,
      "PATCH",
      "/v1beta/tunedModels/p1?updateMask=displayName,temperature",
      {
        displayName: "new name",
        description: "ignored: not in the mask",
        temperature: 0.2,
      },
    );
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({
      displayName: "new name",
      description: "keep",
      temperature: 0.2,
    });
    const snake = await call(service, "PATCH", "/v1beta/tunedModels/p1?updateMask=top_k", {
      topK: 7,
    });
    expect((snake.json as Json).topK).toBe(7);
    const immutable = await call(service, "PATCH", "/v1beta/tunedModels/p1?updateMask=baseModel", {
      baseModel: "models/other",
    });
    expect(immutable.status).toBe(400);
    const unknown = await call(service, "PATCH", "/v1beta/tunedModels/p1?updateMask=displayName", {
      dispayName: "x",
    });
    expect(unknown.status).toBe(400);
    expect((await call(service, "GET", "/v1beta/tunedModels/p1")).json).toMatchObject({
      displayName: "new name",
      topK: 7,
    });
    expectAllResponsesValid(service);
  });

  it("deletes a model; later reads answer 404", async () => {
    const service = tunable();
    const op = (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=gone", createBody()))
      .json as Json;
    const deleted = await call(service, "DELETE", "/v1beta/tunedModels/gone");
    expect(deleted.status).toBe(200);
    expect(deleted.json).toEqual({});
    expect((await call(service, "GET", "/v1beta/tunedModels/gone")).status).toBe(404);
    expect((await call(service, "GET", `/v1/${op.name}`)).status).toBe(404);
    expect((await call(service, "DELETE", "/v1beta/tunedModels/gone")).status).toBe(404);
  });

  it("lists a model's operations on v1 and v1beta", async () => {
    const service = tunable();
    const op = (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=ops", createBody()))
      .json as Json;
    for (const version of ["v1", "v1beta"]) {
      const list = (await call(service, "GET", `/${version}/tunedModels/ops/operations`))
        .json as Json;
      expect(list.operations.map((o: Json) => o.name)).toEqual([op.name]);
    }
    expectAllResponsesValid(service);
  });
});

describe("generateContent", () => {
  it("answers the training output for a seen input and a configurable answer otherwise", async () => {
    const service = tunable({ respond: (input) => `?${input}?` });
    service.seedTunedModel({ id: "gen", examples: examples() });
    const ask = (text: string, path = "/v1beta/tunedModels/gen:generateContent") =>
      call(service, "POST", path, { contents: [{ role: "user", parts: [{ text }] }] });
    const seen = (await ask("3")).json as Json;
    expect(seen.candidates[0].content.parts[0].text).toBe("4");
    expect(seen.candidates[0].finishReason).toBe("STOP");
    expect(
      ((await ask("hello", "/v1/tunedModels/gen:generateContent")).json as Json).candidates[0]
        .content.parts[0].text,
    ).toBe("?hello?");

    const stream = await call(
      service,
      "POST",
      "/v1beta/tunedModels/gen:streamGenerateContent?alt=sse",
      {
        contents: [{ role: "user", parts: [{ text: "one two three four five six" }] }],
      },
    );
    expect(stream.headers["content-type"]).toBe("text/event-stream");
    const events = stream.text
      .split("\r\n\r\n")
      .filter((chunk) => chunk.length > 0)
      .map((chunk) => JSON.parse(chunk.replace(/^data: /, "")) as Json);
    expect(events.length).toBeGreaterThan(1);
    expect(events.map((e) => e.candidates[0].content.parts[0].text).join("")).toBe(
      "?one two three four five six?",
    );
    expect(events.at(-1)!.candidates[0].finishReason).toBe("STOP");
    expectAllResponsesValid(service);
  });

  it("refuses models that are not ACTIVE, system instructions, JSON mode and non-text parts", async () => {
    const service = tunable();
    service.seedTunedModel({ id: "busy", state: "CREATING" });
    service.seedTunedModel({ id: "ready" });
    const contents = [{ role: "user", parts: [{ text: "hi" }] }];
    const busy = await call(service, "POST", "/v1beta/tunedModels/busy:generateContent", {
      contents,
    });
    expect(busy.status).toBe(400);
    expect((busy.json as Json).error.status).toBe("FAILED_PRECONDITION");
    const path = "/v1beta/tunedModels/ready:generateContent";
    expect(
      (
        await call(service, "POST", path, {
          contents,
          systemInstruction: { parts: [{ text: "x" }] },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await call(service, "POST", path, {
          contents,
          generationConfig: { responseMimeType: "application/json" },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await call(service, "POST", path, {
          contents: [{ parts: [{ inlineData: { mimeType: "image/png", data: "AA==" } }] }],
        })
      ).status,
    ).toBe(400);
    expect(
      (await call(service, "POST", path, { contents: [{ parts: [{ text: "x".repeat(40_001) }] }] }))
        .status,
    ).toBe(400);
    expect(
      (await call(service, "POST", "/v1beta/tunedModels/none:generateContent", { contents }))
        .status,
    ).toBe(404);
  });
});

describe("fault injection", () => {
  it("answers a 429 burst with Retry-After and RetryInfo, then recovers", async () => {
    const service = tunable();
    const fault = service.faults.rateLimit({
      route: "createTunedModel",
      times: 2,
      retryAfterSeconds: 3,
    });
    const first = await call(service, "POST", "/v1beta/tunedModels?tunedModelId=r1", createBody());
    expect(first.status).toBe(429);
    expect(first.headers["retry-after"]).toBe("3");
    expect((first.json as Json).error).toMatchObject({
      code: 429,
      status: "RESOURCE_EXHAUSTED",
      details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "3s" }],
    });
    expect((await call(service, "GET", "/v1beta/tunedModels")).status).toBe(200);
    expect(
      (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=r1", createBody())).status,
    ).toBe(429);
    expect(
      (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=r1", createBody())).status,
    ).toBe(200);
    expect(fault.hits).toBe(2);
    expect(fault.remaining).toBe(0);
  });

  it("injects 503s, skips, drops and delays", async () => {
    const service = tunable();
    service.seedTunedModel({ id: "m" });
    service.faults.unavailable({ route: "getTunedModel", skip: 1, times: 1 });
    expect((await call(service, "GET", "/v1beta/tunedModels/m")).status).toBe(200);
    const unavailable = await call(service, "GET", "/v1beta/tunedModels/m");
    expect(unavailable.status).toBe(503);
    expect((unavailable.json as Json).error.status).toBe("UNAVAILABLE");
    service.faults.dropConnection({ method: "GET" });
    expect((await call(service, "GET", "/v1beta/tunedModels/m")).networkError).toBe("dropped");
    service.faults.delay(50, { route: "getTunedModel" });
    const started = Date.now();
    expect((await call(service, "GET", "/v1beta/tunedModels/m")).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(service.requests.map((r) => r.outcome)).toEqual([
      "response",
      "response",
      "dropped",
      "response",
    ]);
  });

  it("loses a create response after the model was created", async () => {
    const service = tunable();
    service.faults.loseResponse();
    const lost = await call(service, "POST", "/v1beta/tunedModels?tunedModelId=lost", createBody());
    expect(lost.networkError).toBe("response-lost");
    expect(service.getTunedModel("lost")).toMatchObject({ state: "CREATING" });
    const retry = await call(
      service,
      "POST",
      "/v1beta/tunedModels?tunedModelId=lost",
      createBody(),
    );
    expect(retry.status).toBe(409);
    const ops = (await call(service, "GET", "/v1beta/tunedModels/lost/operations")).json as Json;
    expect(ops.operations).toHaveLength(1);
    expect(service.listTunedModels()).toHaveLength(1);
    expect(service.requests[0]).toMatchObject({
      outcome: "response-lost",
      status: 200,
      route: "createTunedModel",
    });
  });

  it("fails a tuning job at step N", async () => {
    const service = tunable({ stepsPerPoll: 0 });
    service.faults.failTuningAtStep({ atStep: 7, message: "Out of capacity." });
    const op = (await call(service, "POST", "/v1beta/tunedModels?tunedModelId=f1", createBody()))
      .json as Json;
    service.tick(100);
    const failed = (await call(service, "GET", `/v1/${op.name}`)).json as Json;
    expect(failed.done).toBe(true);
    expect(failed.error).toEqual({ code: 13, message: "Out of capacity.", details: [] });
    expect(failed.metadata.completedSteps).toBe(7);
    expect(service.getTunedModel("f1")).toMatchObject({ state: "FAILED" });
    expectAllResponsesValid(service);
  });

  it("answers any status, e.g. 501 for a server without cancel", async () => {
    const service = tunable();
    const op = (await call(service, "POST", "/v1beta/tunedModels", createBody())).json as Json;
    service.faults.httpError(501, { route: "cancelOperation", times: Number.POSITIVE_INFINITY });
    const response = await call(service, "POST", `/v1/${op.name}:cancel`);
    expect(response.status).toBe(501);
    expect((response.json as Json).error.status).toBe("UNIMPLEMENTED");
  });
});

describe("reset and seeding", () => {
  it("reset forgets models, faults and the log", async () => {
    const service = tunable();
    service.seedTunedModel({ id: "a" });
    service.faults.rateLimit({ times: 5 });
    await call(service, "GET", "/v1beta/tunedModels");
    service.reset();
    expect(service.listTunedModels()).toHaveLength(0);
    expect(service.faults.list()).toHaveLength(0);
    expect(service.requests).toHaveLength(0);
    expect((await call(service, "GET", "/v1beta/tunedModels")).status).toBe(200);
  });
});

describe("clock", () => {
  it("completeAll moves fake time to the end of the longest job; seeded models finished just now", async () => {
    const service = tunable({ stepsPerPoll: 0, startTime: new Date("2025-03-01T00:00:00Z") });
    await call(service, "POST", "/v1beta/tunedModels?tunedModelId=t1", createBody());
    service.completeAll();
    expect(service.clock.iso()).toBe("2025-03-01T00:00:25.000Z");
    expect(service.getTunedModel("t1")).toMatchObject({
      state: "ACTIVE",
      updateTime: "2025-03-01T00:00:25.000Z",
    });
    const seeded = service.seedTunedModel({
      id: "s1",
      examples: examples(8),
      epochCount: 1,
      batchSize: 4,
    });
    expect(seeded).toMatchObject({
      createTime: "2025-03-01T00:00:23.000Z",
      tuningTask: {
        startTime: "2025-03-01T00:00:23.000Z",
        completeTime: "2025-03-01T00:00:25.000Z",
      },
    });
    expect(() => service.advance(-1)).toThrow(RangeError);
  });
});

describe("checkRecordedTraffic", () => {
  it("flags request bodies the fake tolerates but a client should not send", async () => {
    const service = tunable();
    const body = createBody({ name: "tunedModels/not-yours", display_name: "snake" });
    delete body.displayName;
    expect((await call(service, "POST", "/v1beta/tunedModels", body)).status).toBe(200);
    const problems = checkRecordedTraffic(service.requests);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ seq: 1, direction: "request", schema: "TunedModel" });
    expect(problems[0]!.issues.map((issue) => [issue.path, issue.code])).toEqual([
      ["$.name", "read_only"],
      ["$.display_name", "unknown_field"],
    ]);
    expect(
      checkRecordedTraffic(service.requests, { rejectReadOnlyInRequests: false }),
    ).toHaveLength(1);
    expect(checkRecordedTraffic(service.requests, { requests: false })).toEqual([]);
  });

  it("checks each event of a stream; without alt=sse the stream is one JSON array", async () => {
    const service = tunable();
    service.seedTunedModel({ id: "s" });
    const response = await call(service, "POST", "/v1beta/tunedModels/s:streamGenerateContent", {
      contents: [{ parts: [{ text: "a b c d e f" }] }],
    });
    expect(response.headers["content-type"]).toContain("application/json");
    expect(Array.isArray(response.json)).toBe(true);
    expect((response.json as Json[]).length).toBe(3);
    expect(checkRecordedTraffic(service.requests)).toEqual([]);
  });
});
