/**
 * The Gemini client against the fake Gemini service (`tunekit/testing`). The same specs run
 * over msw (`integration.msw.test.ts`) and over the real HTTP server on 127.0.0.1
 * (`integration.http.test.ts`).
 */
import { inspect } from "node:util";
import { GoogleGenerativeAI } from "@google/generative-ai";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/index.js";
import {
  AuthenticationError,
  InvalidDatasetError,
  InvalidOptionError,
  NotFoundError,
  TuningCancelledError,
  TuningFailedError,
  TuningUnavailableError,
} from "../../src/core/errors.js";
import type { JobEvent, TuningSnapshot } from "../../src/core/types.js";
import { CancelUnsupportedError } from "../../src/gemini/job.js";
import { GeminiTunedModel } from "../../src/gemini/model.js";
import { TUNED_MODEL_ID_PATTERN } from "../../src/gemini/names.js";
import { TEMPLATE_MARKER } from "../../src/gemini/template.js";
import type { GeminiTunerOptions } from "../../src/gemini/tuner.js";
import {
  type FakeGeminiService,
  ROUTE_REQUEST_SCHEMAS,
  ROUTE_RESPONSE_SCHEMAS,
  validateAgainstSchema,
} from "../../src/testing/index.js";
import {
  API_KEY,
  collect,
  incrementDataset,
  TUNABLE_BASE,
  testTuner,
  UNTUNABLE_BASE,
} from "./helpers.js";

/** What a transport gives the suite. */
export interface FakeTransport {
  service: FakeGeminiService;
  /** The base URL the client must use. */
  baseUrl: string;
}

const INSTRUCTION = "Add one to the number.";

export function geminiIntegrationSuite(name: string, setup: () => FakeTransport): void {
  describe(`GeminiTuner against the fake service (${name})`, () => {
    let fake: FakeTransport;
    beforeAll(() => {
      fake = setup();
    });

    const tuner = (options: GeminiTunerOptions = {}) =>
      testTuner({ baseUrl: fake.baseUrl, ...options });
    const request = (overrides: Record<string, unknown> = {}) => ({
      baseModel: TUNABLE_BASE,
      dataset: incrementDataset(24, INSTRUCTION),
      displayName: "Increment Bot",
      hyperparameters: { epochCount: 2, batchSize: 4, learningRate: 0.001 },
      ...overrides,
    });

    afterEach(() => {
      // Every request tunekit sent and every answer the fake gave follow the discovery schemas.
      for (const entry of fake.service.requests) {
        const requestSchema = entry.route && ROUTE_REQUEST_SCHEMAS[entry.route];
        if (requestSchema && entry.body !== undefined) {
          const result = validateAgainstSchema(entry.body, requestSchema, { rejectReadOnly: true });
          expect(result.issues, `${entry.method} ${entry.path} body`).toEqual([]);
        }
        if (entry.route && entry.status === 200 && entry.response !== undefined) {
          const schema = ROUTE_RESPONSE_SCHEMAS[entry.route];
          const responses = Array.isArray(entry.response) ? entry.response : [entry.response];
          for (const response of responses) {
            expect(
              validateAgainstSchema(response, schema).issues,
              `${entry.path} response`,
            ).toEqual([]);
          }
        }
        // The key travels in the header only.
        expect(entry.query.key).toBeUndefined();
      }
      fake.service.reset();
      fake.service.stepsPerPoll = 5;
    });

    const routes = () => fake.service.requests.map((r) => r.route);

    it("tunes: preflight, create with a generated id, progress, each snapshot once, success", async () => {
      const job = await tuner().tune(request());
      expect(job.state()).toBe("running");
      expect(job.name).toMatch(/^tunedModels\/increment-bot-[a-z0-9]{6}\/operations\/.+/);
      const events: JobEvent[] = await collect(job.events());
      const model = await job.wait();

      expect(routes().slice(0, 2)).toEqual(["getModel", "createTunedModel"]);
      const create = fake.service.requests.find((r) => r.route === "createTunedModel");
      const id = create?.query.tunedModelId as string;
      expect(id).toMatch(TUNED_MODEL_ID_PATTERN);
      expect(id).toMatch(/^increment-bot-/);
      expect(create?.headers["x-goog-api-key"]).toBe("[redacted]"); // sent as a header
      const body = create?.body as {
        tuningTask: { trainingData: { examples: { examples: unknown[] } } };
      };
      expect(body.tuningTask.trainingData.examples.examples[0]).toEqual({
        textInput: `${INSTRUCTION}\n\n0`,
        output: "1",
      });

      // 24 examples × 2 epochs / batch 4 = 12 steps.
      const snapshots = events
        .filter((e) => e.type === "snapshot")
        .map((e) => (e as { snapshot: TuningSnapshot }).snapshot);
      expect(snapshots.map((s) => s.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      const percents = events
        .filter((e): e is Extract<JobEvent, { type: "progress" }> => e.type === "progress")
        .map((e) => e.progress.completedPercent ?? 0);
      expect(percents.length).toBeGreaterThanOrEqual(2);
      expect([...percents].sort((a, b) => a - b)).toEqual(percents);
      expect(percents.at(-1)).toBe(100);
      const states = events
        .filter((e) => e.type === "state")
        .map((e) => (e as { state: string }).state);
      expect(states).toEqual(["running", "succeeded"]);

      expect(job.state()).toBe("succeeded");
      expect(job.progress()).toMatchObject({
        completedSteps: 12,
        totalSteps: 12,
        completedPercent: 100,
      });
      expect(model).toBeInstanceOf(GeminiTunedModel);
      expect(model.name).toBe(`tunedModels/${id}`);
      expect(model.info()).toMatchObject({
        state: "active",
        baseModel: TUNABLE_BASE,
        displayName: "Increment Bot",
        template: { instruction: INSTRUCTION },
        hyperparameters: { epochCount: 2, batchSize: 4, learningRate: 0.001 },
      });
      expect(model.info().snapshots).toHaveLength(12);
      // The template line is stored server-side but kept out of the user-facing description.
      expect(String(fake.service.getTunedModel(id)?.description)).toContain(TEMPLATE_MARKER);
      expect(model.info().description).toBeUndefined();
    });

    it("generates with the training template applied, so a raw input meets its training prompt", async () => {
      const job = await tuner().tune(request());
      const model = await job.wait();
      // The fake answers an input seen in training with its training output.
      await expect(model.generate("7")).resolves.toBe("8");
      const sent = fake.service.requests.find((r) => r.route === "generateContent");
      expect(sent?.body).toEqual({
        contents: [{ role: "user", parts: [{ text: `${INSTRUCTION}\n\n7` }] }],
      });
      // Without sampling options nothing is sent, so the tuned model's defaults apply.
      expect((sent?.body as Record<string, unknown> | undefined)?.generationConfig).toBeUndefined();

      // A fresh process reads the template back from the service.
      const again = await tuner().getModel(model.name);
      await expect(again.generate("3", { temperature: 0 })).resolves.toBe("4");
      const chunks: string[] = [];
      for await (const chunk of again.generateStream("5")) chunks.push(chunk);
      expect(chunks.join("")).toBe("6");
      expect(routes()).toContain("streamGenerateContent");
    });

    it("is callable with @google/generative-ai's getGenerativeModel({ model: 'tunedModels/…' })", async () => {
      const model = await (await tuner().tune(request())).wait();
      const genAI = new GoogleGenerativeAI(API_KEY);
      const generative = genAI.getGenerativeModel({ model: model.name }, { baseUrl: fake.baseUrl });
      const result = await generative.generateContent(`${INSTRUCTION}\n\n9`);
      expect(result.response.text()).toBe("10");
    });

    it("cancels mid-run: POST v1/…/operations/{op}:cancel, then the job ends cancelled", async () => {
      fake.service.stepsPerPoll = 1;
      const job = await tuner().tune(request());
      const events = collect(job.events());
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (job.progress().completedSteps >= 2) {
            clearInterval(check);
            resolve();
          }
        }, 2);
      });
      await job.cancel();
      expect(job.state()).toBe("cancelled");
      await expect(job.wait()).rejects.toBeInstanceOf(TuningCancelledError);
      const states = (await events)
        .filter((e) => e.type === "state")
        .map((e) => (e as { state: string }).state);
      expect(states.at(-1)).toBe("cancelled");
      const cancel = fake.service.requests.find((r) => r.route === "cancelOperation");
      expect(cancel?.path).toMatch(/^\/v1\/tunedModels\/[^/]+\/operations\/[^/]+:cancel$/);
      expect(job.progress().completedSteps).toBeLessThan(12);
      // Cancelling never deletes the model.
      expect(routes()).not.toContain("deleteTunedModel");
      await job.cancel(); // a finished job is left alone
    });

    it("raises CancelUnsupportedError naming deleteModel when the service cannot cancel", async () => {
      fake.service.stepsPerPoll = 0;
      const job = await tuner().tune(request());
      fake.service.faults.httpError(501, {
        route: "cancelOperation",
        message: "Method not implemented.",
      });
      const error = await job.cancel().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CancelUnsupportedError);
      expect(String((error as Error).message)).toContain("deleteModel");
      expect((error as CancelUnsupportedError).hint).toContain("tuner.deleteModel");
      expect(job.state()).toBe("running");
      expect(routes()).not.toContain("deleteTunedModel");
    });

    it("reports an operation failure (done + error) as TuningFailedError", async () => {
      fake.service.faults.failTuningAtStep({ atStep: 6, message: "Training diverged at step 6." });
      const job = await tuner().tune(request());
      const error = await job.wait().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TuningFailedError);
      expect((error as Error).message).toContain("Training diverged at step 6.");
      expect((error as Error).message).toContain("INTERNAL");
      expect(job.state()).toBe("failed");
      expect(job.progress().snapshots.length).toBeGreaterThanOrEqual(5);
    });

    it("survives a 429 burst with Retry-After on create, and no log line or event shows the key", async () => {
      fake.service.faults.rateLimit({
        route: "createTunedModel",
        times: 2,
        retryAfterSeconds: 0.05,
      });
      fake.service.faults.unavailable({ route: "getOperation", times: 1 });
      const lines: string[] = [];
      const logger = {
        debug: (m: string) => lines.push(m),
        info: (m: string) => lines.push(m),
        warn: (m: string) => lines.push(m),
      };
      const t = tuner({ logger });
      const started = Date.now();
      const job = await t.tune(request());
      expect(Date.now() - started).toBeGreaterThanOrEqual(100); // Retry-After honoured twice
      const events = await collect(job.events());
      const model = await job.wait();
      expect(lines.filter((line) => line.includes("retrying"))).toHaveLength(3);
      for (const text of [
        ...lines,
        JSON.stringify(events),
        inspect(events, { depth: 10 }),
        inspect(t, { depth: 10 }),
        inspect(job, { depth: 10 }),
        inspect(model, { depth: 10 }),
        JSON.stringify(model),
      ]) {
        expect(text).not.toContain(API_KEY);
      }
      const creates = fake.service.requests.filter((r) => r.route === "createTunedModel");
      expect(creates.map((r) => r.status)).toEqual([429, 429, 200]);
      expect(fake.service.listTunedModels()).toHaveLength(1);
    });

    it("survives 503s while polling", async () => {
      fake.service.faults.unavailable({ route: "getOperation", times: 3 });
      const job = await tuner().tune(request());
      const events = await collect(job.events());
      await job.wait();
      expect(fake.service.requests.filter((r) => r.status === 503)).toHaveLength(3);
      expect(events.some((e) => e.type === "state" && e.state === "succeeded")).toBe(true);
    });

    it("survives a connection reset", async () => {
      fake.service.faults.dropConnection({ route: "getOperation", times: 1 });
      fake.service.faults.dropConnection({ route: "getModel", times: 1 });
      const job = await tuner().tune(request());
      await job.wait();
      expect(fake.service.requests.filter((r) => r.outcome === "dropped")).toHaveLength(2);
    });

    it("a create whose response is lost is retried, meets ALREADY_EXISTS and attaches: exactly one model", async () => {
      fake.service.faults.loseResponse({ times: 1 });
      const job = await tuner().tune(request());
      const model = await job.wait();
      expect(fake.service.listTunedModels()).toHaveLength(1);
      const creates = fake.service.requests.filter((r) => r.route === "createTunedModel");
      expect(creates.map((r) => r.outcome)).toEqual(["response-lost", "response"]);
      expect(creates[1]?.status).toBe(409);
      expect(creates[0]?.query.tunedModelId).toBe(creates[1]?.query.tunedModelId);
      expect(model.name).toBe(fake.service.listTunedModels()[0]?.name);
      expect(job.operationName).toMatch(/\/operations\//);
    });

    it("re-attaches after a restart by operation name and by tuned model name", async () => {
      fake.service.stepsPerPoll = 0;
      const first = await tuner().tune(request());
      const operationName = first.name;
      const modelName = first.tunedModelName;
      first.detach();
      fake.service.stepsPerPoll = 5;

      // "Restart": new tuner objects that know only a name.
      const byOperation = await tuner().getJob(operationName);
      expect(byOperation.state()).toBe("running");
      expect(byOperation.name).toBe(operationName);
      const byModel = await tuner().getJob(modelName);
      expect(byModel.operationName).toBe(operationName);
      const [a, b] = await Promise.all([byOperation.wait(), byModel.wait()]);
      expect(a.name).toBe(modelName);
      expect(b.name).toBe(modelName);
      // Finished jobs re-attach as succeeded at once.
      const done = await tuner().getJob(modelName);
      expect(done.state()).toBe("succeeded");
      await expect(done.wait()).resolves.toMatchObject({ name: modelName });
    });

    it("falls back to GET tunedModels/{id} when no operation can be listed", async () => {
      fake.service.seedTunedModel({ id: "seeded-model", state: "CREATING" });
      fake.service.faults.httpError(501, { route: "listOperations", times: Infinity });
      const job = await tuner().getJob("tunedModels/seeded-model");
      expect(job.operationName).toBeUndefined();
      expect(job.name).toBe("tunedModels/seeded-model");
      await job.wait();
      expect(job.state()).toBe("succeeded");
      expect(routes()).toContain("getTunedModel");
    });

    it("lists models across 3 pages with for await, and one page with await", async () => {
      for (let i = 0; i < 5; i++)
        fake.service.seedTunedModel({ id: `listed-${i}`, displayName: `Listed ${i}` });
      const names: string[] = [];
      for await (const info of tuner().listModels({ pageSize: 2 })) names.push(info.name);
      expect(names).toEqual([0, 1, 2, 3, 4].map((i) => `tunedModels/listed-${i}`));
      const lists = fake.service.requests.filter((r) => r.route === "listTunedModels");
      expect(lists).toHaveLength(3);
      expect(lists.map((r) => r.query.pageToken)).toEqual([
        undefined,
        expect.any(String),
        expect.any(String),
      ]);

      const page = await tuner().listModels({ pageSize: 2 });
      expect(page.items.map((m) => m.displayName)).toEqual(["Listed 0", "Listed 1"]);
      expect(page.hasNextPage()).toBe(true);
      expect((await page.nextPage()).items).toHaveLength(2);
    });

    it("patches with an updateMask naming exactly the fields given, keeping the template", async () => {
      const model = await (await tuner().tune(request())).wait();
      const updated = await tuner().updateModel(model.name, {
        displayName: "Renamed",
        description: "Adds one.",
        temperature: 0.2,
      });
      const patch = fake.service.requests.find((r) => r.route === "updateTunedModel");
      expect(patch?.query.updateMask).toBe("displayName,description,temperature");
      expect(updated.info()).toMatchObject({
        displayName: "Renamed",
        description: "Adds one.",
        temperature: 0.2,
        template: { instruction: INSTRUCTION },
      });
      await expect(updated.generate("1")).resolves.toBe("2");
      await expect(tuner().updateModel(model.name, {})).rejects.toBeInstanceOf(InvalidOptionError);
    });

    it("deletes a model", async () => {
      fake.service.seedTunedModel({ id: "doomed" });
      await tuner().deleteModel("tunedModels/doomed");
      expect(fake.service.getTunedModel("doomed")).toBeUndefined();
      await expect(tuner().getModel("tunedModels/doomed")).rejects.toBeInstanceOf(NotFoundError);
      await expect(tuner().deleteModel("doomed")).rejects.toBeInstanceOf(NotFoundError);
    });

    it("lists a model's operations", async () => {
      const job = await tuner().tune(request());
      const operations = await tuner().listOperations(job.tunedModelName).all();
      expect(operations.map((op) => op.name)).toEqual([job.name]);
      await expect(tuner().getOperation(job.name)).resolves.toMatchObject({ name: job.name });
      await job.wait();
    });

    it("lists base models and tells which ones accept tuning", async () => {
      const models = await tuner().listBaseModels({ pageSize: 2 }).all();
      const tunable = models.filter((m) =>
        m.supportedGenerationMethods?.includes("createTunedModel"),
      );
      expect(tunable.map((m) => m.name)).toEqual([TUNABLE_BASE]);
      expect(models.length).toBeGreaterThan(1);
    });

    it("refuses a base model that cannot be tuned, before creating anything", async () => {
      const error = await tuner()
        .tune(request({ baseModel: UNTUNABLE_BASE }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TuningUnavailableError);
      expect((error as Error).message).toContain("tunekit/vertex");
      expect((error as Error).message).toContain("tunekit/local");
      expect(routes()).toEqual(["getModel"]);

      const missing = await tuner()
        .tune(request({ baseModel: "models/gemini-0-gone" }))
        .catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(TuningUnavailableError);
      expect((missing as Error).message).toContain("Vertex AI");
    });

    it("sends nothing when the dataset or options are invalid", async () => {
      await expect(tuner().tune(request({ dataset: incrementDataset(5) }))).rejects.toBeInstanceOf(
        InvalidDatasetError,
      );
      await expect(
        tuner().tune(
          request({ hyperparameters: { learningRate: 0.1, learningRateMultiplier: 2 } }),
        ),
      ).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(
        tuner().tune(request({ gemini: { tunedModelId: "Bad_Id" } })),
      ).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(tuner().tune(request({ displayName: "x".repeat(41) }))).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
      expect(fake.service.requests).toEqual([]);
    });

    it("refuses multi-turn conversations (single turns only) before any request", async () => {
      const chat = Dataset.from(
        Array.from({ length: 24 }, (_, i) => ({
          messages: [
            { role: "user", content: `${i}` },
            { role: "assistant", content: `${i + 1}` },
            { role: "user", content: "and then?" },
            { role: "assistant", content: `${i + 2}` },
          ],
        })),
      );
      const error = await tuner()
        .tune(request({ dataset: chat }))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidDatasetError);
      expect((error as Error).message).toMatch(
        /index 0, field "messages": a multi-turn conversation \(4 turns\): Gemini API tuning takes single turns only/,
      );
      expect(fake.service.requests).toEqual([]);
    });

    it("keeps the API key out of errors from a rejected key", async () => {
      const wrongKey = "AIzaSyWRONG-key-that-must-not-leak-42";
      const error = await tuner({ apiKey: wrongKey })
        .getModel("tunedModels/anything")
        .catch((e: unknown) => e);
      // The fake answers 403 with ErrorInfo reason API_KEY_INVALID: a wrong key, whatever the status.
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as AuthenticationError).reason).toBe("API_KEY_INVALID");
      for (const text of [
        (error as Error).message,
        JSON.stringify(error),
        inspect(error, { depth: 10 }),
      ]) {
        expect(text).not.toContain(wrongKey);
        expect(text).not.toContain(API_KEY);
      }
    });
  });
}
