/**
 * VertexTuner against the fake Vertex service (`tunekit/testing`). The same specs run over msw
 * (`integration.msw.test.ts`) and over the real HTTP server (`integration.http.test.ts`).
 *
 * Written against a small transport description ({@link VertexFakeTransport}) and the shared
 * `Tuner`/`TuningJob` surface wherever the behaviour is backend-neutral, so the specs can move
 * into the cross-backend interface suite.
 */
import { inspect } from "node:util";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  ConnectionError,
  InvalidOptionError,
  NotFoundError,
  TuningCancelledError,
  TuningFailedError,
  UnsupportedOptionError,
} from "../../src/core/errors.js";
import type { JobEvent, Tuner } from "../../src/core/types.js";
import { TEMPLATE_MARKER } from "../../src/gemini/template.js";
import { checkVertexTraffic, type FakeVertexService } from "../../src/testing/index.js";
import { toVertexJsonl } from "../../src/vertex/dataset.js";
import { VertexTunedModel } from "../../src/vertex/model.js";
import { REQUEST_LABEL_KEY } from "../../src/vertex/names.js";
import type { VertexTuneRequest, VertexTunerOptions } from "../../src/vertex/tuner.js";
import {
  BASE_MODEL,
  collect,
  INSTRUCTION,
  incrementDataset,
  LOCATION,
  PROJECT,
  STAGING,
  TOKEN,
  testTuner,
} from "./helpers.js";

/** The parts of a sent `TuningJob` the specs read. */
interface SentJob {
  baseModel?: string;
  tunedModelDisplayName?: string;
  description?: string;
  labels: Record<string, string>;
  supervisedTuningSpec: {
    trainingDatasetUri?: string;
    validationDatasetUri?: string;
    hyperParameters?: Record<string, unknown>;
  };
}

/** The request body of the first `route` request in the log. */
function sent(service: FakeVertexService, route: "createTuningJob"): SentJob {
  const entry = service.requests.find((r) => r.route === route);
  if (!entry) throw new Error(`no ${route} request was sent`);
  return entry.body as SentJob;
}

/** What a transport gives the suite. */
export interface VertexFakeTransport {
  service: FakeVertexService;
  /** The Vertex base URL the client must use (undefined: the real regional host, intercepted). */
  baseUrl: string | undefined;
  /** The Cloud Storage base URL the client must use (undefined: the real host, intercepted). */
  storageBaseUrl: string | undefined;
}

export function vertexIntegrationSuite(name: string, setup: () => VertexFakeTransport): void {
  describe(`VertexTuner against the fake service (${name})`, () => {
    let fake: VertexFakeTransport;
    beforeAll(() => {
      fake = setup();
    });

    const tuner = (options: VertexTunerOptions = {}) =>
      testTuner({
        ...(fake.baseUrl ? { baseUrl: fake.baseUrl } : {}),
        ...(fake.storageBaseUrl ? { storageBaseUrl: fake.storageBaseUrl } : {}),
        ...options,
      });
    const request = (overrides: Partial<VertexTuneRequest> = {}): VertexTuneRequest => ({
      baseModel: BASE_MODEL,
      dataset: incrementDataset(24, INSTRUCTION),
      displayName: "Increment Bot",
      hyperparameters: { epochCount: 2, learningRateMultiplier: 0.5 },
      ...overrides,
    });
    const routes = () => fake.service.requests.map((r) => r.route);
    const states = (events: JobEvent[]) =>
      events.filter((e) => e.type === "state").map((e) => (e as { state: string }).state);

    afterEach(() => {
      // Every request tunekit sent and every answer the fake gave follow the schemas.
      expect(checkVertexTraffic(fake.service.requests)).toEqual([]);
      for (const entry of fake.service.requests) {
        expect(entry.url).not.toContain(TOKEN);
        if (entry.headers.authorization !== undefined) {
          expect(entry.headers.authorization).toBe("[redacted]");
        }
      }
      fake.service.reset();
      fake.service.stepsPerPoll = 5;
    });

    it("stages the data, creates the job and follows it to success", async () => {
      const t: Tuner = tuner();
      const job = await t.tune(request() as Parameters<Tuner["tune"]>[0]);
      expect(job.name).toMatch(
        new RegExp(`^projects/${PROJECT}/locations/${LOCATION}/tuningJobs/\\d+$`),
      );
      expect(job.state()).toBe("pending");
      const events = await collect(job.events());
      const model = await job.wait();

      // Upload first, then the create: nothing else before.
      expect(routes().slice(0, 2)).toEqual(["uploadObject", "createTuningJob"]);
      const upload = fake.service.requests[0];
      expect(upload?.query.uploadType).toBe("media");
      expect(upload?.query.name).toMatch(/^runs\/tunekit-[a-z0-9]{20}\/training\.jsonl$/);
      expect(upload?.headers["content-type"]).toBe("application/jsonl");
      const uri = `gs://tunekit-staging/${upload?.query.name}`;
      expect(fake.service.getObject(uri)?.text).toBe(
        toVertexJsonl(incrementDataset(24, INSTRUCTION)),
      );

      const create = fake.service.requests[1];
      const body = create?.body as SentJob;
      expect(body.baseModel).toBe(BASE_MODEL);
      expect(body.tunedModelDisplayName).toBe("Increment Bot");
      expect(body.supervisedTuningSpec).toEqual({
        trainingDatasetUri: uri,
        hyperParameters: { epochCount: "2", learningRateMultiplier: 0.5 },
      });
      expect(body.labels[REQUEST_LABEL_KEY]).toMatch(/^[a-z0-9]{20}$/);
      expect(upload?.query.name).toContain(body.labels[REQUEST_LABEL_KEY]);
      expect(body.description).toContain(TEMPLATE_MARKER);

      expect(states(events)).toEqual(["pending", "running", "succeeded"]);
      const statsEvent = events.find(
        (e) => e.type === "log" && e.message.startsWith("Vertex AI read the training data"),
      ) as Extract<JobEvent, { type: "log" }> | undefined;
      // 24 examples × 2 epochs / 8 per step (the fake's batch) = 6 steps.
      expect(statsEvent?.data).toMatchObject({ exampleCount: 24, tuningStepCount: 6 });
      expect(job.progress()).toMatchObject({
        completedSteps: 6,
        totalSteps: 6,
        completedPercent: 100,
        snapshots: [],
        metrics: { exampleCount: 24, tuningStepCount: 6 },
      });
      // No step counts are invented while the job runs.
      const running = events
        .filter((e): e is Extract<JobEvent, { type: "progress" }> => e.type === "progress")
        .filter((e) => e.progress.completedPercent === undefined);
      for (const e of running) expect(e.progress.completedSteps).toBe(0);

      expect(model).toBeInstanceOf(VertexTunedModel);
      const vertexModel = model as VertexTunedModel;
      expect(vertexModel.endpoint).toMatch(
        /^projects\/tunekit-test\/locations\/us-central1\/endpoints\/\d+$/,
      );
      expect(model.info()).toMatchObject({
        name: job.name,
        state: "active",
        baseModel: BASE_MODEL,
        displayName: "Increment Bot",
        template: { instruction: INSTRUCTION, kind: "vertex-system-instruction" },
        hyperparameters: { epochCount: 2, learningRateMultiplier: 0.5 },
      });
      expect(model.info().description).toBeUndefined();
    });

    it("generates on the endpoint with the training instruction as systemInstruction", async () => {
      const model = await (await tuner().tune(request())).wait();
      await expect(model.generate("7")).resolves.toBe("8");
      const sent = fake.service.requests.find((r) => r.route === "generateContent");
      expect(sent?.path).toMatch(
        /^\/v1\/projects\/tunekit-test\/locations\/us-central1\/endpoints\/\d+:generateContent$/,
      );
      expect(sent?.body).toEqual({
        contents: [{ role: "user", parts: [{ text: "7" }] }],
        systemInstruction: { parts: [{ text: INSTRUCTION }] },
      });
      // A fresh tuner reads the template back from the job.
      const again = await tuner().getModel(model.name);
      await expect(again.generate("3", { temperature: 0, maxOutputTokens: 10 })).resolves.toBe("4");
      const chunks: string[] = [];
      for await (const chunk of again.generateStream("5")) chunks.push(chunk);
      expect(chunks.join("")).toBe("6");
      const streamed = fake.service.requests.find((r) => r.route === "streamGenerateContent");
      expect(streamed?.query.alt).toBe("sse");
      const parts: string[] = [];
      for await (const chunk of again.generateStream("tell me more", { template: null })) {
        parts.push(chunk);
      }
      expect(parts.length).toBeGreaterThan(1);
      expect(parts.join("")).toBe(`${(again as VertexTunedModel).endpoint} says: tell me more`);
      // Without the instruction the fake does not recognise the prompt.
      await expect(again.generate("3", { template: null })).resolves.toContain("says: 3");
    });

    it("a create whose response is lost finds its job by label instead of creating again: exactly one job", async () => {
      fake.service.faults.loseResponse({ times: 1 });
      const job = await tuner().tune(request());
      await job.wait();
      expect(fake.service.listJobs()).toHaveLength(1);
      expect(job.name).toBe(fake.service.listJobs()[0]?.name);
      const creates = fake.service.requests.filter((r) => r.route === "createTuningJob");
      expect(creates.map((r) => r.outcome)).toEqual(["response-lost"]);
      const lookups = fake.service.requests.filter((r) => r.route === "listTuningJobs");
      expect(lookups).toHaveLength(1);
      const label = sent(fake.service, "createTuningJob").labels[REQUEST_LABEL_KEY];
      expect(lookups[0]?.query.filter).toBe(`labels.${REQUEST_LABEL_KEY}="${label}"`);
      expect(routes()).toEqual(
        expect.arrayContaining([
          "uploadObject",
          "createTuningJob",
          "listTuningJobs",
          "getTuningJob",
        ]),
      );
      expect(routes().indexOf("listTuningJobs")).toBe(routes().indexOf("createTuningJob") + 1);
    });

    it("a create refused with 503 (the service did nothing) is sent again: exactly one job", async () => {
      fake.service.faults.unavailable({ route: "createTuningJob", times: 1, retryAfterSeconds: 0 });
      const job = await tuner().tune(request());
      expect(fake.service.listJobs()).toHaveLength(1);
      expect(job.name).toBe(fake.service.listJobs()[0]?.name);
      const creates = fake.service.requests.filter((r) => r.route === "createTuningJob");
      expect(creates.map((r) => r.status)).toEqual([503, 200]);
      // A refusal proves nothing was made: no lookup is needed.
      expect(routes()).not.toContain("listTuningJobs");
      const labels = creates.map(
        (r) => (r.body as { labels: Record<string, string> }).labels[REQUEST_LABEL_KEY],
      );
      expect(new Set(labels).size).toBe(1);
    });

    it("a create whose connection drops is never sent again: no job found → an error naming the label", async () => {
      fake.service.faults.dropConnection({ route: "createTuningJob", times: 1 });
      const error = await tuner({ createRecoveryMs: 300 })
        .tune(request())
        .catch((caught: unknown) => caught);
      const creates = fake.service.requests.filter((r) => r.route === "createTuningJob");
      expect(creates.map((r) => r.outcome)).toEqual(["dropped"]);
      const label = (creates[0]!.body as { labels: Record<string, string> }).labels[
        REQUEST_LABEL_KEY
      ];
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).hint).toContain(`findJobByRequestLabel("${label}")`);
      // It looked for the job more than once before giving up, and made none.
      expect(routes().filter((r) => r === "listTuningJobs").length).toBeGreaterThan(1);
      expect(fake.service.listJobs()).toHaveLength(0);
    });

    it("rejects options Vertex cannot honour before any request, saying what to use", async () => {
      const t = tuner();
      const batch = await t
        .tune(request({ hyperparameters: { epochCount: 2, batchSize: 4 } }))
        .catch((e: unknown) => e);
      expect(batch).toBeInstanceOf(UnsupportedOptionError);
      expect(batch).toMatchObject({ backend: "vertex", option: "hyperparameters.batchSize" });
      const lr = await t
        .tune(request({ hyperparameters: { learningRate: 0.001 } }))
        .catch((e: unknown) => e);
      expect(lr).toBeInstanceOf(UnsupportedOptionError);
      expect((lr as Error).message).toContain("learningRateMultiplier");
      await expect(t.tune(request({ dataset: {} as never }))).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
      await expect(t.tune(request({ dataset: undefined as never }))).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
      await expect(
        tuner({ stagingUri: undefined as never }).tune(request()),
      ).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(t.tune(request({ vertex: { labels: { Team: "x" } } }))).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
      await expect(t.tune(request({ vertex: { adapterSize: 3 as never } }))).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
      expect(fake.service.requests).toEqual([]);
    });

    it("uploads a validation set beside the training set and names both in the spec", async () => {
      const job = await tuner().tune(
        request({
          validation: incrementDataset(5, INSTRUCTION),
          vertex: { adapterSize: 4, labels: { team: "nlp" } },
        }),
      );
      const uploads = fake.service.requests.filter((r) => r.route === "uploadObject");
      expect(uploads.map((r) => r.query.name?.split("/").pop())).toEqual([
        "training.jsonl",
        "validation.jsonl",
      ]);
      const body = sent(fake.service, "createTuningJob");
      expect(body.supervisedTuningSpec.validationDatasetUri).toMatch(/validation\.jsonl$/);
      expect(body.supervisedTuningSpec.hyperParameters?.adapterSize).toBe("ADAPTER_SIZE_FOUR");
      expect(body.labels.team).toBe("nlp");
      await job.wait();
    });

    it("uses an existing gs:// dataset without uploading", async () => {
      const uri = "gs://tunekit-staging/existing/train.jsonl";
      fake.service.putObject(uri, toVertexJsonl(incrementDataset(10).examples));
      const job = await tuner({ stagingUri: undefined as never }).tune({
        baseModel: BASE_MODEL,
        vertex: { trainingDatasetUri: uri },
      });
      await job.wait();
      expect(routes()).not.toContain("uploadObject");
      const body = sent(fake.service, "createTuningJob");
      expect(body.supervisedTuningSpec.trainingDatasetUri).toBe(uri);
      expect(body.description).toBeUndefined();
    });

    it("cancels: POST {name}:cancel, CANCELLING stays running, then cancelled", async () => {
      fake.service.stepsPerPoll = 1;
      const job = await tuner().tune(request({ dataset: incrementDataset(200, INSTRUCTION) }));
      const events = collect(job.events());
      while (job.state() !== "running") await new Promise((r) => setTimeout(r, 2));
      await job.cancel();
      expect(job.state()).toBe("cancelled");
      await expect(job.wait()).rejects.toBeInstanceOf(TuningCancelledError);
      expect(states(await events)).toEqual(["pending", "running", "cancelled"]);
      const cancel = fake.service.requests.find((r) => r.route === "cancelTuningJob");
      expect(cancel?.path).toBe(`/v1/${job.name}:cancel`);
      expect(cancel?.body).toEqual({});
      expect(fake.service.getJob(job.name)?.state).toBe("JOB_STATE_CANCELLED");
      expect(fake.service.getJob(job.name)?.error).toMatchObject({ code: 1 });
      await job.cancel(); // a finished job is left alone
      expect(routes().filter((r) => r === "cancelTuningJob")).toHaveLength(1);
    });

    it("reports a failed job as TuningFailedError with the service's message", async () => {
      fake.service.faults.failTuningAtStep({ atStep: 2, message: "Training diverged at step 2." });
      const job = await tuner().tune(request());
      const error = await job.wait().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TuningFailedError);
      expect((error as Error).message).toContain("Training diverged at step 2.");
      expect((error as Error).message).toContain("JOB_STATE_FAILED");
      expect(job.state()).toBe("failed");
    });

    it("reports bad data found by the service (a malformed line) as a failed job", async () => {
      const uri = "gs://tunekit-staging/bad.jsonl";
      fake.service.putObject(uri, '{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}\n');
      const job = await tuner().tune({
        baseModel: BASE_MODEL,
        vertex: { trainingDatasetUri: uri },
      });
      const error = await job.wait().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TuningFailedError);
      expect((error as Error).message).toContain("line 1");
    });

    it("lists jobs page by page, as models, and by filter", async () => {
      fake.service.stepsPerPoll = 0;
      const t = tuner();
      const uri = "gs://tunekit-staging/existing/train.jsonl";
      fake.service.putObject(uri, toVertexJsonl(incrementDataset(4).examples));
      const names: string[] = [];
      for (let i = 0; i < 5; i++) {
        const job = await t.tune({
          baseModel: BASE_MODEL,
          displayName: `run ${i}`,
          vertex: { trainingDatasetUri: uri, labels: { batch: i % 2 === 0 ? "even" : "odd" } },
        });
        names.push(job.name);
      }
      const first = await t.listJobs({ pageSize: 2 });
      expect(first.items).toHaveLength(2);
      expect(first.hasNextPage()).toBe(true);
      const pages: number[] = [];
      for await (const page of t.listJobs({ pageSize: 2 }).pages()) pages.push(page.items.length);
      expect(pages).toEqual([2, 2, 1]);
      const all = await t.listModels({ pageSize: 2 }).all();
      expect(all.map((m) => m.name).sort()).toEqual([...names].sort());
      expect(all.every((m) => m.state === "creating")).toBe(true);
      const even = await t.listJobs({ filter: 'labels.batch="even"' }).all();
      expect(even).toHaveLength(3);
      fake.service.completeAll();
      const done = await t.listModels({ filter: 'state="JOB_STATE_SUCCEEDED"' }).all();
      expect(done).toHaveLength(5);
      expect(done.every((m) => m.state === "active")).toBe(true);
    });

    it("re-attaches by full name and by bare id; getModel; deleteModel is not offered", async () => {
      fake.service.stepsPerPoll = 0;
      const started = await tuner().tune(request());
      fake.service.completeAll();
      const byName = await tuner().getJob(started.name);
      expect(byName.state()).toBe("succeeded");
      const id = started.name.split("/").pop() as string;
      const byId = await tuner().getJob(id);
      expect(byId.name).toBe(started.name);
      const model = await tuner().getModel(started.name);
      await expect(model.generate("1")).resolves.toBe("2");
      const before = fake.service.requests.length;
      await expect(tuner().deleteModel(started.name)).rejects.toBeInstanceOf(
        UnsupportedOptionError,
      );
      expect(fake.service.requests.length).toBe(before);
      await expect(tuner().getJob("999")).rejects.toBeInstanceOf(NotFoundError);
    });

    it("survives 429 and 503 while polling and never shows the token", async () => {
      fake.service.faults.rateLimit({ route: "getTuningJob", times: 1, retryAfterSeconds: 0.02 });
      fake.service.faults.unavailable({ route: "getTuningJob", times: 1 });
      fake.service.faults.dropConnection({ route: "uploadObject", times: 1 });
      const lines: string[] = [];
      const logger = { debug: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
      const t = tuner({ logger });
      const job = await t.tune(request());
      const events = await collect(job.events());
      const model = await job.wait();
      expect(routes().filter((r) => r === "uploadObject")).toHaveLength(2);
      for (const text of [
        ...lines,
        JSON.stringify(events),
        inspect(events, { depth: 10 }),
        inspect(t, { depth: 10 }),
        inspect(job, { depth: 10 }),
        JSON.stringify(model),
      ]) {
        expect(text).not.toContain(TOKEN);
      }
    });

    it("maps a wrong token to AuthenticationError before anything is created", async () => {
      const error = await tuner({ accessToken: "wrong-token-123" })
        .tune(request())
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as Error).message).not.toContain("wrong-token-123");
      expect(fake.service.listJobs()).toHaveLength(0);
    });

    it("stores the staged files under the request label inside the staging prefix", async () => {
      await tuner({ stagingUri: "gs://other-bucket" }).tune(request());
      const objects = fake.service.listObjects();
      expect(objects).toHaveLength(1);
      expect(objects[0]?.bucket).toBe("other-bucket");
      expect(objects[0]?.name).toMatch(/^tunekit-[a-z0-9]{20}\/training\.jsonl$/);
      expect(STAGING.startsWith("gs://")).toBe(true);
    });
  });
}
