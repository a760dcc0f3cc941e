/**
 * The one interface, checked once for every backend: the same dataset, the same request
 * shape, the same job handle (events, progress, snapshots, wait, cancel) and the same tuned
 * model, whether the job runs on the (fake, real-HTTP) Gemini service or on this machine.
 *
 * Only what a backend cannot share is parameterised: its tuner, its part of the request, how
 * to provoke a failure, and which dataset it rejects.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import {
  AbortedError,
  InvalidDatasetError,
  InvalidOptionError,
  TimeoutError,
  TuningCancelledError,
  TuningFailedError,
} from "../../src/core/errors.js";
import type {
  JobEvent,
  TuneRequest,
  Tuner,
  TuningJob,
  TuningSnapshot,
} from "../../src/core/types.js";
import { GeminiTuner } from "../../src/gemini/tuner.js";
import { LocalTuner } from "../../src/local/index.js";
import {
  type FakeGeminiServer,
  type FakeVertexServer,
  startFakeGeminiServer,
  startFakeVertexServer,
} from "../../src/testing/index.js";
import { VertexTuner } from "../../src/vertex/tuner.js";
import { collect } from "../helpers.js";

/** The same examples for every backend: `"n"` → `"n+1"`. */
const dataset = Dataset.from(
  Array.from({ length: 24 }, (_, i) => ({ input: String(i), output: String(i + 1) })),
);

interface Backend {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  tuner(): Tuner;
  /** The backend's valid request for `dataset` (shared fields plus its own part). */
  request(): TuneRequest;
  totalSteps: number;
  /**
   * Whether the service reports per-step loss while training. Vertex AI does not (its curve
   * lives in Vertex Experiments): its jobs report no invented steps or snapshots.
   */
  reportsSteps: boolean;
  /** A job that starts and then fails. */
  failingJob(tuner: Tuner): Promise<TuningJob>;
  /** A request the backend rejects as an invalid dataset before starting. */
  invalidDataset(): TuneRequest;
}

const API_KEY = "AIzaSyTEST-contract-key-0123456789abcd";
let fake: FakeGeminiServer;

const gemini: Backend = {
  name: "gemini (fake service over HTTP)",
  async setup() {
    fake = await startFakeGeminiServer({ apiKey: API_KEY, tuningEnabled: true, stepsPerPoll: 1 });
  },
  async teardown() {
    await fake.close();
  },
  tuner: () =>
    new GeminiTuner({
      apiKey: API_KEY,
      baseUrl: fake.url,
      pollIntervalMs: 2,
      maxPollIntervalMs: 5,
      initialRetryDelayMs: 2,
      maxRetryDelayMs: 5,
      env: {},
    }),
  request: () => ({
    baseModel: "models/gemini-1.5-flash-001-tuning",
    dataset,
    displayName: "Contract",
    hyperparameters: { epochCount: 2, batchSize: 4, learningRate: 0.001 },
  }),
  totalSteps: 12,
  reportsSteps: true,
  async failingJob(tuner) {
    fake.service.faults.failTuningAtStep({ atStep: 3, message: "Training diverged at step 3." });
    return tuner.tune(gemini.request());
  },
  invalidDataset: () => ({
    ...gemini.request(),
    dataset: Dataset.from([{ input: "1", output: "2" }]),
  }),
};

const MODEL = join(import.meta.dirname, "..", "fixtures", "models", "llama-tied-gqa");
let root = "";
let runs = 0;
const localDir = () => join(root, `run-${++runs}`);

const local: Backend = {
  name: "local (tiny Llama fixture, native LoRA)",
  async setup() {
    root = mkdtempSync(join(tmpdir(), "tunekit-contract-"));
  },
  async teardown() {
    rmSync(root, { recursive: true, force: true });
  },
  tuner: () => new LocalTuner({ outputRoot: root, warmupRatio: 0.03 }),
  request: () => ({
    baseModel: MODEL,
    dataset,
    displayName: "Contract",
    // A tiny random model needs many epochs and a high rate to learn the task.
    hyperparameters: { epochCount: 80, batchSize: 8, learningRate: 1e-2 },
    local: {
      outputDir: localDir(),
      template: "User: {instruction}{input}\n\nAssistant: ",
      lora: { alpha: 16, dropout: 0 },
      saveSteps: 20,
      seed: 7,
    },
  }),
  totalSteps: 240,
  reportsSteps: true,
  async failingJob(tuner) {
    // The base model disappears between a cancelled run and its resume.
    const base = join(root, `model-${++runs}`);
    cpSync(MODEL, base, { recursive: true });
    const first = await tuner.tune({ ...local.request(), baseModel: base });
    await until(() => first.progress().completedSteps >= 2);
    await first.cancel();
    rmSync(base, { recursive: true });
    return (tuner as LocalTuner).resume(first.name);
  },
  invalidDataset: () => ({
    ...local.request(),
    dataset: Dataset.from([
      { input: "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", output: "21" },
    ]),
    local: { outputDir: localDir(), template: "User: {input}\n\nAssistant: ", maxLength: 16 },
  }),
};

const VERTEX_TOKEN = "ya29.contract-token";
let vertexFake: FakeVertexServer;

const vertex: Backend = {
  name: "vertex (fake Vertex AI + Cloud Storage over HTTP)",
  async setup() {
    vertexFake = await startFakeVertexServer({ accessToken: VERTEX_TOKEN, stepsPerPoll: 2 });
  },
  async teardown() {
    await vertexFake.close();
  },
  tuner: () =>
    new VertexTuner({
      project: "contract",
      location: "us-central1",
      accessToken: VERTEX_TOKEN,
      stagingUri: "gs://contract-bucket/runs",
      baseUrl: vertexFake.url,
      storageBaseUrl: vertexFake.url,
      pollIntervalMs: 2,
      maxPollIntervalMs: 5,
      initialRetryDelayMs: 2,
      maxRetryDelayMs: 5,
      env: {},
    }),
  request: () => ({
    baseModel: "gemini-2.5-flash",
    dataset,
    displayName: "Contract",
    hyperparameters: { epochCount: 2, learningRateMultiplier: 1 },
  }),
  totalSteps: 6, // the fake picks batch size 8, as Vertex chooses its own
  reportsSteps: false,
  async failingJob(tuner) {
    vertexFake.service.faults.failTuningAtStep({
      atStep: 3,
      message: "Training diverged at step 3.",
    });
    return tuner.tune(vertex.request());
  },
  // Vertex documents no per-example limits a client can check (token limits are enforced by
  // the service and reported in tuningDataStats): a malformed record is the shared case.
  invalidDataset: () => ({
    ...vertex.request(),
    dataset: Dataset.from([{ input: "1", output: "" }]),
  }),
};

function until(condition: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (condition()) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
}

describe.each([gemini, vertex, local])("Tuner contract: $name", (backend) => {
  beforeAll(() => backend.setup());
  afterAll(() => backend.teardown());

  it("tune → events → progress/snapshots → wait → generate", async () => {
    const tuner = backend.tuner();
    const job = await tuner.tune(backend.request());
    expect(["pending", "running"]).toContain(job.state());
    const events = collect(job.events());
    const model = await job.wait();
    const seen = await events;

    expect(seen[0]?.type).toBe("state");
    const states = seen
      .filter((e) => e.type === "state")
      .map((e) => (e as { state: string }).state);
    expect(states.at(-1)).toBe("succeeded");
    expect(job.state()).toBe("succeeded");

    const snapshots = seen
      .filter((e): e is Extract<JobEvent, { type: "snapshot" }> => e.type === "snapshot")
      .map((e) => e.snapshot);
    const steps = backend.reportsSteps
      ? Array.from({ length: backend.totalSteps }, (_, i) => i + 1)
      : [];
    expect(snapshots.map((s) => s.step)).toEqual(steps); // every step once, in order — or none
    for (const s of snapshots) {
      expect(Object.keys(s)).toEqual(
        expect.arrayContaining(["step", "epoch", "meanLoss", "computeTime"]),
      );
      expect(s.epoch).toBeGreaterThanOrEqual(1);
      expect(Number.isFinite(s.meanLoss)).toBe(true);
      expect(Date.parse(s.computeTime)).not.toBeNaN();
    }
    const progress = job.progress();
    expect(progress.completedSteps).toBe(backend.totalSteps); // known once the job succeeded
    expect(progress.totalSteps).toBe(backend.totalSteps);
    expect(progress.completedPercent).toBe(100);
    expect(progress.snapshots.map((s: TuningSnapshot) => s.step)).toEqual(steps);
    const lastProgress = seen.filter((e) => e.type === "progress").at(-1) as
      | Extract<JobEvent, { type: "progress" }>
      | undefined;
    expect(lastProgress?.progress.completedSteps).toBe(backend.totalSteps);

    expect(typeof model.name).toBe("string");
    expect(model.info().name).toBe(model.name);
    expect(model.info().state).toBe("active");
    // The raw input, no prompt building: the tuned model answers a training example.
    expect((await model.generate("9", { maxOutputTokens: 16 })).trim()).toBe("10");
    // Re-opened by name, it is the same model.
    const reopened = await tuner.getModel(model.name);
    expect(reopened.name).toBe(model.name);
    expect((await reopened.generate("9", { maxOutputTokens: 16 })).trim()).toBe("10");
  });

  it("cancels mid-run: the job ends cancelled, wait rejects TuningCancelledError", async () => {
    const job = await backend.tuner().tune(backend.request());
    const events = collect(job.events());
    await until(() =>
      backend.reportsSteps ? job.progress().completedSteps >= 2 : job.state() === "running",
    );
    await job.cancel();
    expect(job.state()).toBe("cancelled");
    await expect(job.wait()).rejects.toBeInstanceOf(TuningCancelledError);
    const states = (await events)
      .filter((e) => e.type === "state")
      .map((e) => (e as { state: string }).state);
    expect(states.at(-1)).toBe("cancelled");
    expect(job.progress().completedSteps).toBeLessThan(backend.totalSteps);
    await job.cancel(); // a finished job is left alone
    expect(job.state()).toBe("cancelled");
  });

  it("wait({ signal }) and wait({ timeoutMs }) stop the waiting only", async () => {
    const job = await backend.tuner().tune(backend.request());
    const controller = new AbortController();
    const waiting = job.wait({ signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    await expect(job.wait({ timeoutMs: 1 })).rejects.toBeInstanceOf(TimeoutError);
    expect(["pending", "running"]).toContain(job.state());
    await job.wait();
    expect(job.state()).toBe("succeeded");
  });

  it("failures surface as the same error classes", async () => {
    const tuner = backend.tuner();
    const failing = await backend.failingJob(tuner);
    const error = await failing.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TuningFailedError);
    expect(failing.state()).toBe("failed");

    const badOption = await tuner
      .tune({ ...backend.request(), hyperparameters: { batchSize: 0 } })
      .catch((e: unknown) => e);
    expect(badOption).toBeInstanceOf(InvalidOptionError);
    expect((badOption as InvalidOptionError).path).toBe("hyperparameters.batchSize");

    const badData = await Promise.resolve()
      .then(() => tuner.tune(backend.invalidDataset()))
      .catch((e: unknown) => e);
    expect(badData).toBeInstanceOf(InvalidDatasetError);
  });
});
