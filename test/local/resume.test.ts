/**
 * Resuming local runs when the process did not end cleanly: the run record may lag the
 * newest checkpoint, the stored data may have changed, the base model path may be relative.
 * Over the real native addon and the tiny fixture model (`npm run build:native` first).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import { InvalidOptionError, TuningFailedError } from "../../src/core/errors.js";
import type { TuneRequest } from "../../src/core/types.js";
import { LocalTuner } from "../../src/local/index.js";
import type { RunRecord } from "../../src/local/job.js";

const REPO = join(import.meta.dirname, "..", "..");
const MODEL = join(REPO, "test", "fixtures", "models", "llama-tied-gqa");
const SEED = join(REPO, "examples", "data", "increment-seed.jsonl");

const root = mkdtempSync(join(tmpdir(), "tunekit-local-resume-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const outDir = (name: string) => join(root, `${name}-${++counter}`);

/** 10 epochs of the 15 seed examples in batches of 5: 30 steps, a checkpoint every 5. */
function request(dataset: Dataset, outputDir: string, baseModel = MODEL): TuneRequest {
  return {
    baseModel,
    dataset,
    hyperparameters: { epochCount: 10, batchSize: 5, learningRate: 5e-3 },
    local: { outputDir, template: "User: {input}\n\nAssistant: ", saveSteps: 5, seed: 3 },
  };
}

const readRecord = (dir: string) =>
  JSON.parse(readFileSync(join(dir, "tunekit-run.json"), "utf8")) as RunRecord;
const writeRecord = (dir: string, record: RunRecord) =>
  writeFileSync(join(dir, "tunekit-run.json"), JSON.stringify(record));

/** Starts a run and cancels it once step `at` is reported; returns the step it stopped at. */
async function interrupted(tuner: LocalTuner, req: TuneRequest, at: number): Promise<number> {
  const job = await tuner.tune(req);
  for await (const event of job.events()) {
    if (event.type === "snapshot" && event.snapshot.step >= at) {
      await job.cancel();
      break;
    }
  }
  await job.wait().catch(() => {});
  return job.progress().completedSteps;
}

describe("resuming a local run", () => {
  it("continues from the newest checkpoint even when the run record lags it: no gap in the snapshots", async () => {
    const dataset = await Dataset.load(SEED);
    const tuner = new LocalTuner();
    const dir = outDir("lagging");
    const stopped = await interrupted(tuner, request(dataset, dir), 12);
    // As if the process had been killed right after writing checkpoint-<stopped>: the record
    // still names an older checkpoint, and metrics.jsonl holds a step the checkpoint lacks.
    writeRecord(dir, {
      ...readRecord(dir),
      state: "running",
      lastCheckpoint: join(dir, "checkpoint-5"),
      completedSteps: 5,
    });
    const after = {
      type: "snapshot",
      snapshot: { step: stopped + 1, epoch: 1, meanLoss: 99, computeTime: "" },
    };
    writeFileSync(join(dir, "metrics.jsonl"), `${JSON.stringify(after)}\n`, { flag: "a" });

    // Re-attached, the interrupted run shows what it keeps: the newest checkpoint on disk.
    const attached = await tuner.getJob(dir);
    expect(attached.progress().completedSteps).toBe(stopped);
    expect(attached.progress().snapshots.at(-1)?.step).toBe(stopped);

    const resumed = await tuner.resume(dir);
    let described: RunRecord | undefined;
    for await (const event of resumed.events()) {
      // The first step of the resumed run: by now the record describes the checkpoint it
      // continues from.
      if (event.type === "snapshot" && event.snapshot.step > stopped) {
        described = readRecord(dir);
        break;
      }
    }
    await resumed.wait();
    expect(described).toMatchObject({
      lastCheckpoint: join(dir, `checkpoint-${stopped}`),
      completedSteps: stopped,
    });
    const snapshots = resumed.progress().snapshots;
    expect(snapshots.map((s) => s.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(snapshots.every((s) => s.meanLoss < 99)).toBe(true);
    expect(readRecord(dir)).toMatchObject({ state: "succeeded", completedSteps: 30 });
  });

  it("refuses stored data that changed since the checkpoint (same size, other tokens)", async () => {
    const dataset = await Dataset.load(SEED);
    const tuner = new LocalTuner();
    const dir = outDir("changed");
    await interrupted(tuner, request(dataset, dir), 7);
    const file = join(dir, "tunekit-sequences.json");
    const data = JSON.parse(readFileSync(file, "utf8")) as {
      train: { inputIds: number[]; labels: number[] }[];
    };
    const first = data.train[0] as { inputIds: number[]; labels: number[] };
    const last = first.inputIds.length - 1;
    first.inputIds[last] = ((first.inputIds[last] as number) + 1) % 300;
    first.labels[last] = first.inputIds[last] as number;
    writeFileSync(file, JSON.stringify(data));

    const resumed = await tuner.resume(dir);
    const error = await resumed.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TuningFailedError);
    expect((error as Error).cause).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message).toMatch(/cannot resume .*the training data differs/);
  });

  it("stores the base model as an absolute path, so the run reopens from another directory", async () => {
    const dataset = await Dataset.load(SEED);
    const tuner = new LocalTuner();
    const dir = outDir("relative");
    const cwd = process.cwd();
    const job = await tuner.tune(request(dataset, dir, relative(cwd, MODEL)));
    await job.wait();
    expect(readRecord(dir).baseModel).toBe(MODEL);
    const adapterConfig = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    expect(adapterConfig.base_model_name_or_path).toBe(MODEL);
    try {
      process.chdir(root);
      const model = await new LocalTuner().getModel(dir);
      expect(typeof (await model.generate("3", { maxOutputTokens: 2 }))).toBe("string");
    } finally {
      process.chdir(cwd);
    }
  });
});
