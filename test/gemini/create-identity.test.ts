/**
 * A Gemini create is retried only because its id is fixed; the retry attaches to an existing
 * model only when that model provably came from this request (its request marker matches).
 * A 429, a 503 or a connection dropped before the service acted never turns someone else's
 * model with the same id into "our" job, and a create whose answer was lost says how to
 * re-attach when the follow-up lookup fails too.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AlreadyExistsError, UnavailableError } from "../../src/core/errors.js";
import { type FakeGeminiServer, startFakeGeminiServer } from "../../src/testing/index.js";
import { API_KEY, incrementDataset, TUNABLE_BASE, testTuner } from "./helpers.js";

let fake: FakeGeminiServer;
beforeAll(async () => {
  fake = await startFakeGeminiServer({ apiKey: API_KEY, tuningEnabled: true });
});
afterEach(() => fake.service.reset());
afterAll(() => fake.close());

const tuner = () => testTuner({ baseUrl: fake.url });
const request = (tunedModelId?: string) => ({
  baseModel: TUNABLE_BASE,
  dataset: incrementDataset(24),
  displayName: "Increment Bot",
  hyperparameters: { epochCount: 2, batchSize: 4 },
  ...(tunedModelId ? { gemini: { tunedModelId } } : {}),
});
const creates = () => fake.service.requests.filter((r) => r.route === "createTunedModel");

describe("GeminiTuner.tune with an id that already exists", () => {
  const firstFailures = {
    "429 with Retry-After": () =>
      fake.service.faults.rateLimit({ route: "createTunedModel", retryAfterSeconds: 0 }),
    "503": () => fake.service.faults.unavailable({ route: "createTunedModel" }),
    "a dropped connection": () => fake.service.faults.dropConnection({ route: "createTunedModel" }),
  };
  for (const [name, inject] of Object.entries(firstFailures)) {
    it(`does not attach to the existing model after ${name} on the first attempt`, async () => {
      const existing = fake.service.seedTunedModel({ id: "my-model", baseModel: TUNABLE_BASE });
      inject();
      const error = await tuner()
        .tune(request("my-model"))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AlreadyExistsError);
      expect((error as Error).message).toContain("tunedModels/my-model");
      expect((error as Error).message).toMatch(/not the model this request created|already exists/);
      // Nothing was created or changed: the old model is the only one, untouched.
      expect(fake.service.listTunedModels()).toEqual([existing]);
      expect(creates()).toHaveLength(2);
    });
  }

  it("still attaches when the first attempt created the model and only its answer was lost", async () => {
    fake.service.faults.loseResponse({ route: "createTunedModel" });
    const job = await tuner().tune(request("my-model"));
    expect(job.tunedModelName).toBe("tunedModels/my-model");
    expect(fake.service.listTunedModels()).toHaveLength(1);
    expect(creates().map((r) => r.status)).toEqual([200, 409]);
    await job.wait();
  });

  it("attaches after a 503, then a lost answer, then ALREADY_EXISTS", async () => {
    fake.service.faults.unavailable({ route: "createTunedModel" });
    fake.service.faults.loseResponse({ route: "createTunedModel" });
    const job = await tuner().tune(request());
    expect(fake.service.listTunedModels()).toHaveLength(1);
    expect(creates().map((r) => r.outcome)).toEqual(["response", "response-lost", "response"]);
    expect(job.tunedModelName).toBe(fake.service.listTunedModels()[0]?.name);
  });
});

describe("GeminiTuner.tune when the create answer is lost and the lookup fails", () => {
  it("rejects with an error that says the model may exist and how to re-attach", async () => {
    fake.service.faults.loseResponse({ route: "createTunedModel" });
    fake.service.faults.unavailable({ route: "getTunedModel", times: Infinity });
    const error = await tuner()
      .tune(request("lost-model"))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnavailableError);
    const message = (error as Error).message;
    expect(message).toContain("tunedModels/lost-model may exist");
    expect(message).toContain('tuner.getJob("tunedModels/lost-model")');
    expect((error as UnavailableError).hint).toContain('getJob("tunedModels/lost-model")');
    // The model does exist: the advice is right.
    expect(fake.service.getTunedModel("lost-model")).toBeDefined();
  });
});

describe("GeminiTuner.tune when every attempt is refused", () => {
  it("says nothing about a model that may exist (none can)", async () => {
    fake.service.faults.unavailable({ route: "createTunedModel", times: Infinity });
    const error = await tuner()
      .tune(request("refused-model"))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).not.toContain("may exist");
    expect(fake.service.listTunedModels()).toEqual([]);
  });

  it("but does after a lost answer, even when later attempts are refused", async () => {
    fake.service.faults.loseResponse({ route: "createTunedModel" });
    fake.service.faults.unavailable({ route: "createTunedModel", times: Infinity });
    const error = await tuner()
      .tune(request("lost-then-refused"))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toContain("tunedModels/lost-then-refused may exist");
    expect(fake.service.getTunedModel("lost-then-refused")).toBeDefined();
  });
});
