/**
 * `LocalTuner` end to end over the real native addon and the committed tiny fixture model
 * (`llama-tied-gqa`, 2 layers, hidden 64). Needs `npm run build:native` first.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import {
  AbortedError,
  InvalidDatasetError,
  InvalidOptionError,
  ModelLoadError,
  TuningCancelledError,
  TuningFailedError,
} from "../../src/core/errors.js";
import type { JobEvent, TuneRequest, TuningSnapshot } from "../../src/core/types.js";
import {
  type LocalRunRecord,
  LocalTunedModel,
  LocalTuner,
  METRICS_FILE,
} from "../../src/local/index.js";
import { collect } from "../helpers.js";

const REPO = join(import.meta.dirname, "..", "..");
const MODEL = join(REPO, "test", "fixtures", "models", "llama-tied-gqa");
const SEED = join(REPO, "examples", "data", "increment-seed.jsonl");
/** The seed recipe's prompt format. */
const SEED_TEMPLATE = "User: {instruction}{input}\n\nAssistant: ";

const root = mkdtempSync(join(tmpdir(), "tunekit-local-tuner-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const outDir = (name: string) => join(root, `${name}-${++counter}`);

/** Settings under which the tiny random model learns the 15 seed examples (180 steps, ~2 s). */
function learnRequest(
  dataset: Dataset,
  outputDir: string,
  overrides: Partial<TuneRequest> = {},
): TuneRequest {
  return {
    baseModel: MODEL,
    dataset,
    displayName: "increment",
    hyperparameters: { epochCount: 60, batchSize: 5, learningRate: 1e-2 },
    local: {
      outputDir,
      template: SEED_TEMPLATE,
      lora: { rank: 8, alpha: 16, dropout: 0 },
      saveSteps: 50,
      seed: 7,
    },
    ...overrides,
  };
}

function records(dir: string): LocalRunRecord[] {
  return readFileSync(join(dir, METRICS_FILE), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as LocalRunRecord);
}

describe("LocalTuner", () => {
  it("tunes the tiny model until greedy generation reproduces every seed example", async () => {
    const dataset = await Dataset.load(SEED);
    const reported: LocalRunRecord[] = [];
    const tuner = new LocalTuner({ reporter: (r) => void reported.push(r), warmupRatio: 0.03 });
    const dir = outDir("learn");
    const started = Date.now();
    const job = await tuner.tune(learnRequest(dataset, dir));
    expect(job.name).toBe(dir);
    const events = collect(job.events());
    const model = await job.wait();
    const seconds = (Date.now() - started) / 1000;
    const seen = await events;

    // Events: running → 180 snapshots in order, each once → succeeded.
    const states = seen
      .filter((e) => e.type === "state")
      .map((e) => (e as { state: string }).state);
    expect(states[0]).toMatch(/pending|running/);
    expect(states.at(-1)).toBe("succeeded");
    const snapshots = seen
      .filter((e): e is Extract<JobEvent, { type: "snapshot" }> => e.type === "snapshot")
      .map((e) => e.snapshot);
    // 15 examples / batch 5 = 3 steps per epoch × 60 epochs.
    expect(snapshots.map((s) => s.step)).toEqual(Array.from({ length: 180 }, (_, i) => i + 1));
    expect(snapshots[0]?.epoch).toBe(1);
    expect(snapshots[2]?.epoch).toBe(1);
    expect(snapshots[3]?.epoch).toBe(2);
    expect(snapshots.at(-1)?.epoch).toBe(60);
    expect(Date.parse(snapshots[0]?.computeTime ?? "")).not.toBeNaN();
    const first = snapshots[0] as TuningSnapshot;
    const last = snapshots.at(-1) as TuningSnapshot;
    expect(last.meanLoss).toBeLessThan(first.meanLoss / 20);

    const progress = job.progress();
    expect(progress).toMatchObject({
      completedSteps: 180,
      totalSteps: 180,
      completedPercent: 100,
      epoch: 60,
    });
    expect(progress.snapshots).toHaveLength(180);
    expect(progress.metrics?.tokensPerSecond).toBeGreaterThan(0);
    expect(progress.metrics?.learningRate).toBeGreaterThanOrEqual(0);
    expect(progress.metrics?.gradNorm).toBeGreaterThanOrEqual(0);
    expect(progress.metrics?.peakRssBytes).toBeGreaterThan(0);

    // The adapter directory: PEFT files, the template, checkpoints, metrics.
    expect(model).toBeInstanceOf(LocalTunedModel);
    expect(model.name).toBe(dir);
    expect(model.baseModel).toBe(MODEL);
    for (const file of [
      "adapter_config.json",
      "adapter_model.safetensors",
      "tunekit.json",
      METRICS_FILE,
    ]) {
      expect(existsSync(join(dir, file)), file).toBe(true);
    }
    for (const step of [50, 100, 150, 180])
      expect(existsSync(join(dir, `checkpoint-${step}`))).toBe(true);
    const adapterConfig = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    expect(adapterConfig).toMatchObject({
      r: 8,
      lora_alpha: 16,
      peft_type: "LORA",
      base_model_name_or_path: MODEL,
    });
    expect(model.info()).toMatchObject({ name: dir, state: "active", displayName: "increment" });
    expect(model.info().template).toMatchObject({ kind: "custom", prompt: SEED_TEMPLATE });

    // metrics.jsonl: every event, the loss curve as snapshot lines; the reporter saw the same.
    const lines = records(dir);
    expect(lines.filter((l) => l.type === "snapshot")).toHaveLength(180);
    expect(lines.filter((l) => l.type === "step")).toHaveLength(180);
    expect(
      lines.filter((l) => l.type === "checkpoint").map((l) => (l as { step: number }).step),
    ).toEqual([50, 100, 150, 180]);
    expect(lines.at(-1)).toMatchObject({ type: "state", state: "succeeded" });
    expect(reported.map((r) => r.type)).toEqual(lines.map((l) => l.type));

    // Greedy generation reproduces every training output, from the raw input alone.
    const wrong: string[] = [];
    for (const example of dataset.examples) {
      const answer = await model.generate(example.input, { maxOutputTokens: 16 });
      if (answer.trim() !== example.output)
        wrong.push(`${example.input} -> ${JSON.stringify(answer)}`);
    }
    expect(wrong).toEqual([]);

    // Re-opened from disk: same answers; the job re-attaches as succeeded.
    const reopened = await tuner.getModel(dir);
    expect(reopened.info().snapshots).toHaveLength(180);
    expect((await reopened.generate("41", { maxOutputTokens: 16 })).trim()).toBe(
      (await model.generate("41", { maxOutputTokens: 16 })).trim(),
    );
    const attached = await tuner.getJob(dir);
    expect(attached.state()).toBe("succeeded");
    expect(attached.progress().completedSteps).toBe(180);
    expect((await attached.wait()).name).toBe(dir);
    console.log(
      `local tuner: 180 steps, loss ${first.meanLoss.toFixed(3)} → ${last.meanLoss.toFixed(4)}, ${seconds.toFixed(1)} s to train`,
    );
    expect(seconds).toBeLessThan(30);
  });

  it("validates before any work: options, hyperparameters, dataset, base model", async () => {
    const tuner = new LocalTuner();
    const dataset = Dataset.from([{ input: "1", output: "2" }]);
    const dir = outDir("invalid");
    const bad = async (overrides: Partial<TuneRequest>) =>
      tuner.tune({ ...learnRequest(dataset, dir), ...overrides }).catch((e: unknown) => e);
    const rank = await bad({ local: { outputDir: dir, lora: { rank: 0 } } });
    expect(rank).toBeInstanceOf(InvalidOptionError);
    expect((rank as InvalidOptionError).path).toBe("local.lora.rank");
    const modules = await bad({ local: { outputDir: dir, lora: { targetModules: ["qkv"] } } });
    expect((modules as InvalidOptionError).path).toBe("local.lora.targetModules");
    const unknown = await bad({ local: { outputDir: dir, rank: 4 } as never });
    expect((unknown as InvalidOptionError).path).toBe("local.rank");
    const hyper = await bad({ hyperparameters: { batchSize: 0 } });
    expect((hyper as InvalidOptionError).path).toBe("hyperparameters.batchSize");
    const both = await bad({ hyperparameters: { learningRate: 1e-3, learningRateMultiplier: 2 } });
    expect(both).toBeInstanceOf(InvalidOptionError);
    const missing = await bad({ baseModel: join(root, "no-such-model") });
    expect(missing).toBeInstanceOf(ModelLoadError);
    const tooLong = await bad({
      dataset: Dataset.from([{ input: "1 2 3 4 5 6 7 8 9 10", output: "11" }]),
      local: { outputDir: dir, template: SEED_TEMPLATE, maxLength: 4 },
    });
    expect(tooLong).toBeInstanceOf(InvalidDatasetError);
    expect((tooLong as InvalidDatasetError).message).toMatch(/no response token|leaves no/);
    // Nothing was written.
    expect(existsSync(dir)).toBe(false);
  });

  it("reports truncation at maxLength as a warning event, never silently", async () => {
    const tuner = new LocalTuner();
    const dir = outDir("truncate");
    const dataset = Dataset.from([
      { input: "1", output: "one two three four five six seven eight nine ten" },
      { input: "2", output: "3" },
    ]);
    const job = await tuner.tune({
      ...learnRequest(dataset, dir),
      hyperparameters: { epochCount: 1, batchSize: 2, learningRate: 1e-3 },
      local: { outputDir: dir, template: SEED_TEMPLATE, maxLength: 24 },
    });
    const events = await collect(job.events());
    await job.wait();
    const warnings = events.filter(
      (e): e is Extract<JobEvent, { type: "log" }> => e.type === "log" && e.level === "warning",
    );
    expect(warnings.map((w) => w.message).join("\n")).toMatch(
      /1 example of 2 exceed maxLength 24: \d+ response tokens? cut .*index 0/,
    );
    expect(
      records(dir).some(
        (r) => r.type === "log" && r.level === "warning" && /maxLength 24/.test(r.message),
      ),
    ).toBe(true);
  });

  it("cancels mid-run within a micro-batch, keeps the last checkpoint, and resumes to the end", async () => {
    const dataset = await Dataset.load(SEED);
    const tuner = new LocalTuner();
    const dir = outDir("cancel");
    const job = await tuner.tune({
      ...learnRequest(dataset, dir),
      local: {
        outputDir: dir,
        template: SEED_TEMPLATE,
        lora: { alpha: 16, dropout: 0 },
        saveSteps: 5,
        seed: 7,
      },
    });
    let cancelledAt = 0;
    for await (const event of job.events()) {
      if (event.type === "snapshot" && event.snapshot.step >= 12) {
        cancelledAt = event.snapshot.step;
        await job.cancel();
        break;
      }
    }
    expect(job.state()).toBe("cancelled");
    await expect(job.wait()).rejects.toBeInstanceOf(TuningCancelledError);
    const stoppedAt = job.progress().completedSteps;
    expect(stoppedAt).toBeGreaterThanOrEqual(cancelledAt);
    // Backpressure keeps the trainer a few events ahead of JS: it stops soon after the cancel.
    expect(stoppedAt - cancelledAt).toBeLessThanOrEqual(10);
    expect(existsSync(join(dir, "adapter_model.safetensors"))).toBe(false); // no final adapter
    // Cancelling saves the state after the last completed step, beside the periodic ones.
    const lastCheckpoint = stoppedAt;
    expect(existsSync(join(dir, `checkpoint-${Math.floor(stoppedAt / 5) * 5}`))).toBe(true);
    const checkpoint = join(dir, `checkpoint-${lastCheckpoint}`);
    expect(existsSync(join(checkpoint, "trainer_state.json"))).toBe(true);

    // The last checkpoint is a loadable adapter (the template comes from the run directory).
    const partial = await tuner.getModel(checkpoint);
    expect(typeof (await partial.generate("1", { maxOutputTokens: 4 }))).toBe("string");

    // Re-attach and resume: the run finishes; the loss curve continues from the checkpoint.
    const attached = await tuner.getJob(dir);
    expect(attached.state()).toBe("cancelled");
    const resumed = await attached.resume();
    const model = await resumed.wait();
    expect(model.name).toBe(dir);
    const steps = resumed.progress().snapshots.map((s) => s.step);
    expect(steps).toEqual(Array.from({ length: 180 }, (_, i) => i + 1));
    expect(
      records(dir).some((r) => r.type === "started" && r.resumedFromStep === lastCheckpoint),
    ).toBe(true);
    for (const example of dataset.examples) {
      expect((await model.generate(example.input, { maxOutputTokens: 16 })).trim()).toBe(
        example.output,
      );
    }
  });

  it("a cancelled and resumed run follows the uninterrupted run's loss trajectory (dropout on)", async () => {
    const dataset = await Dataset.load(SEED);
    const request = (outputDir: string): TuneRequest => ({
      ...learnRequest(dataset, outputDir),
      hyperparameters: { epochCount: 10, batchSize: 5, learningRate: 5e-3 },
      local: { outputDir, template: SEED_TEMPLATE, lora: { dropout: 0.1 }, saveSteps: 4, seed: 11 },
    });
    const tuner = new LocalTuner({ warmupRatio: 0.1, schedule: "cosine" });
    const straight = await tuner.tune(request(outDir("straight")));
    await straight.wait();

    const dir = outDir("interrupted");
    const first = await tuner.tune(request(dir));
    for await (const event of first.events()) {
      if (event.type === "snapshot" && event.snapshot.step >= 6) {
        await first.cancel();
        break;
      }
    }
    expect(first.state()).toBe("cancelled");
    const resumed = await tuner.resume(dir);
    await resumed.wait();

    const want = straight.progress().snapshots;
    const got = resumed.progress().snapshots;
    expect(got.map((s) => s.step)).toEqual(want.map((s) => s.step));
    for (const [i, s] of want.entries()) {
      const other = got[i] as TuningSnapshot;
      expect(Math.abs(other.meanLoss - s.meanLoss), `step ${s.step}`).toBeLessThanOrEqual(
        1e-6 * Math.max(1, s.meanLoss),
      );
    }
  });

  it("wait({ signal }) stops waiting only; the job keeps running", async () => {
    const tuner = new LocalTuner();
    const dir = outDir("wait");
    const job = await tuner.tune(learnRequest(await Dataset.load(SEED), dir));
    const controller = new AbortController();
    const waiting = job.wait({ signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    await expect(job.wait({ timeoutMs: 1 })).rejects.toMatchObject({ code: "timeout" });
    expect(["pending", "running"]).toContain(job.state());
    const model = await job.wait();
    expect(job.state()).toBe("succeeded");
    expect(model.name).toBe(dir);
  });

  it("a run whose base model disappeared fails on resume with TuningFailedError (cause ModelLoadError)", async () => {
    const base = join(root, "moved-model");
    cpSync(MODEL, base, { recursive: true });
    const tuner = new LocalTuner();
    const dir = outDir("moved");
    const job = await tuner.tune({
      ...learnRequest(await Dataset.load(SEED), dir, { baseModel: base }),
    });
    for await (const event of job.events()) {
      if (event.type === "snapshot" && event.snapshot.step >= 3) {
        await job.cancel();
        break;
      }
    }
    rmSync(base, { recursive: true });
    const resumed = await (await tuner.getJob(dir)).resume();
    const error = await resumed.wait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TuningFailedError);
    expect((error as TuningFailedError).cause).toBeInstanceOf(ModelLoadError);
    expect(resumed.state()).toBe("failed");
    expect((await tuner.getJob(dir)).state()).toBe("failed");
    expect(records(dir).at(-1)).toMatchObject({ type: "state", state: "failed" });
  });

  it("evaluates a validation set (evalLoss in snapshots); gradient checkpointing keeps the trajectory", async () => {
    const dataset = await Dataset.load(SEED);
    const { train, validation } = dataset.split({ validationFraction: 0.2, seed: 1 });
    const run = async (gradientCheckpointing: boolean) => {
      const job = await new LocalTuner({ gradientCheckpointing }).tune({
        ...learnRequest(train, outDir(`ckpt-${gradientCheckpointing}`)),
        validation,
        hyperparameters: { epochCount: 2, batchSize: 4, learningRate: 1e-2 },
        local: {
          outputDir: outDir(`ckpt-${gradientCheckpointing}`),
          template: SEED_TEMPLATE,
          lora: { alpha: 16, dropout: 0.1 },
          evalSteps: 2,
          seed: 3,
        },
      });
      await job.wait();
      return job.progress().snapshots;
    };
    const plain = await run(false);
    const recomputed = await run(true);
    expect(plain.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(plain.filter((s) => s.evalLoss !== undefined).map((s) => s.step)).toEqual([2, 4, 6]);
    for (const [i, s] of plain.entries()) {
      const other = recomputed[i] as TuningSnapshot;
      expect(Math.abs(other.meanLoss - s.meanLoss)).toBeLessThan(1e-4 * Math.max(1, s.meanLoss));
    }
  });

  it("lists and deletes only its own directories", async () => {
    const outputRoot = join(root, "listing");
    const tuner = new LocalTuner({ outputRoot });
    const dataset = Dataset.from([
      { input: "1", output: "2" },
      { input: "2", output: "3" },
    ]);
    const job = await tuner.tune({
      baseModel: MODEL,
      dataset,
      displayName: "Listed Run",
      hyperparameters: { epochCount: 1, batchSize: 2 },
      local: { template: SEED_TEMPLATE },
    });
    const model = await job.wait();
    expect(model.name.startsWith(join(outputRoot, "listed-run-"))).toBe(true);
    const listed = [];
    for await (const info of tuner.listModels()) listed.push(info);
    expect(listed.map((i) => i.name)).toEqual([model.name]);
    expect(listed[0]?.displayName).toBe("Listed Run");
    await expect(tuner.deleteModel(join(root))).rejects.toBeInstanceOf(ModelLoadError);
    await tuner.deleteModel(model.name);
    expect(existsSync(model.name)).toBe(false);
  });
});

describe("adapters trained elsewhere", () => {
  const PEFT_ADAPTER = "test/fixtures/train/lora/llama-tied-gqa/trained"; // saved by Python PEFT

  it("opens a PEFT adapter directory once told which template it was trained with", async () => {
    const error = await LocalTunedModel.open(PEFT_ADAPTER).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as ModelLoadError).hint).toContain('template: "auto"');

    const model = await LocalTunedModel.open(PEFT_ADAPTER, { template: "plain" });
    expect(model.baseModel).toBe("test/fixtures/models/llama-tied-gqa");
    expect(typeof (await model.generate("1", { maxOutputTokens: 3 }))).toBe("string");
  });
});
