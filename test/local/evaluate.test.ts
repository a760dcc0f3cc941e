/**
 * `evaluate()` on local models over the real native addon and the shipped demo model: response
 * loss agrees with the trainer's validation loss, a base model is scored the way tuning prompts
 * it; validation during training (early stopping, keeping the best adapter) and the TensorBoard
 * event file of a run. Needs `npm run build:native` first.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import { InvalidOptionError } from "../../src/core/errors.js";
import { evaluate } from "../../src/core/evaluate/index.js";
import { readTensorBoardEvents } from "../../src/core/tensorboard/index.js";
import type { TuneRequest } from "../../src/core/types.js";
import {
  LocalBaseModel,
  type LocalTunedModel,
  LocalTuner,
  TENSORBOARD_TAGS,
} from "../../src/local/index.js";

const REPO = join(import.meta.dirname, "..", "..");
const DEMO = join(REPO, "models", "demo-counting");
const all = await Dataset.load(join(REPO, "examples", "data", "increment.jsonl"));
const { train, validation } = all.split({ validationSize: 24, seed: 3 });

const root = mkdtempSync(join(tmpdir(), "tunekit-local-eval-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const outDir = (name: string) => join(root, `${name}-${++counter}`);

function request(overrides: TuneRequest["local"] = {}, epochCount = 1): TuneRequest {
  return {
    baseModel: DEMO,
    dataset: train,
    validation,
    hyperparameters: { epochCount, batchSize: 16, learningRate: 1e-3 },
    local: { outputDir: outDir("run"), seed: 7, ...overrides },
  };
}

const runRecord = (dir: string) =>
  JSON.parse(readFileSync(join(dir, "tunekit-run.json"), "utf8")) as {
    completedSteps: number;
    totalSteps: number;
    stoppedEarly?: boolean;
    best?: { step: number; evalLoss: number; restored: boolean };
  };

describe("evaluate on local models", () => {
  it("reports the trainer's validation loss, and less than the base model's", async () => {
    const job = await new LocalTuner({ tensorboard: false }).tune(request({ evalSteps: 100 }));
    const tuned = (await job.wait()) as LocalTunedModel;
    const lastEval = job.progress().snapshots.at(-1)?.evalLoss as number;
    expect(lastEval).toBeGreaterThan(0);

    const report = await evaluate(tuned, validation, {
      generation: { maxOutputTokens: 16 },
      groupBy: (e) => (e.input.includes(",") ? "separators" : "plain"),
    });
    await tuned.dispose();
    // Same sequences, same loss: the merged adapter vs the trainer's LoRA forward.
    expect(report.metrics.loss).toBeCloseTo(lastEval, 4);
    expect(report.metrics.perplexity).toBeCloseTo(Math.exp(lastEval), 3);
    expect(report.results.every((r) => (r.tokens ?? 0) > 0 && r.output !== undefined)).toBe(true);
    expect(Object.keys(report.slices ?? {}).sort()).toEqual(["plain", "separators"]);

    const base = await LocalBaseModel.open(DEMO);
    const before = await evaluate(base, validation, { generation: { maxOutputTokens: 16 } });
    await base.dispose();
    expect(before.model).toBe(DEMO);
    expect(before.metrics.loss as number).toBeGreaterThan(report.metrics.loss as number);
    expect(before.metrics.exactMatch as number).toBeLessThan(report.metrics.exactMatch as number);
  });
});

describe("validation during local training", () => {
  it("stops early when the validation loss stops improving, and says so", async () => {
    // A threshold no decrease can beat: every evaluation after the first is "no improvement",
    // so patience 2 with evalSteps 2 stops at step 6 of 48.
    const job = await new LocalTuner({ tensorboard: false }).tune(
      request({ evalSteps: 2, earlyStopping: { patience: 2, threshold: 100 } }, 2),
    );
    await job.wait();
    const progress = job.progress();
    expect(job.state()).toBe("succeeded");
    expect(progress.completedSteps).toBe(6);
    expect(progress.totalSteps).toBeGreaterThan(6);
    expect(progress.snapshots.filter((s) => s.evalLoss !== undefined).map((s) => s.step)).toEqual([
      2, 4, 6,
    ]);
    const record = runRecord(job.name);
    expect(record).toMatchObject({ completedSteps: 6, stoppedEarly: true });
    expect(record.best?.step).toBeGreaterThan(0);
    expect(readdirSync(job.name)).toContain("adapter_model.safetensors");
  });

  it("keeps the adapter of the lowest validation loss with keepBest", async () => {
    // Validation answers that echo the input: tuning first learns the answer format (loss
    // falls), then n → n + 1 (loss rises again), so the best evaluation is not the last.
    const echo = Dataset.from(
      validation.examples.map((e) => ({ input: e.input, output: e.input })),
    );
    const job = await new LocalTuner({ tensorboard: false }).tune({
      ...request({ evalSteps: 4, keepBest: true }),
      validation: echo,
      hyperparameters: { epochCount: 1, batchSize: 16, learningRate: 3e-3 },
    });
    const tuned = (await job.wait()) as LocalTunedModel;
    const evals = job.progress().snapshots.filter((s) => s.evalLoss !== undefined);
    const best = evals.reduce((a, b) => ((b.evalLoss as number) < (a.evalLoss as number) ? b : a));
    const last = evals.at(-1);
    expect(best.step).toBeLessThan(last?.step as number);
    expect(runRecord(job.name).best).toEqual({
      step: best.step,
      evalLoss: best.evalLoss,
      restored: true,
    });
    const report = await evaluate(tuned, echo, { generate: false });
    await tuned.dispose();
    expect(report.metrics.loss).toBeCloseTo(best.evalLoss as number, 4);
    expect(report.metrics.loss as number).toBeLessThan((last?.evalLoss as number) - 0.05);
  });

  it("refuses early stopping without a validation set or evalSteps, before any work", async () => {
    const tuner = new LocalTuner();
    const { validation: _v, ...noValidation } = request({ evalSteps: 2, keepBest: true });
    await expect(tuner.tune(noValidation)).rejects.toThrow(/need a validation set/);
    await expect(tuner.tune(request({ earlyStopping: { patience: 2 } }))).rejects.toThrow(
      /needs local.evalSteps/,
    );
    const bad = await tuner
      .tune(request({ evalSteps: 1, earlyStopping: { patience: 0 } }))
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(InvalidOptionError);
    expect((bad as InvalidOptionError).path).toBe("local.earlyStopping.patience");
  });
});

describe("TensorBoard events of a local run", () => {
  it("writes every step's loss, learning rate, tokens/s, memory and validation loss", async () => {
    const job = await new LocalTuner().tune(request({ evalSteps: 4 }));
    await job.wait();
    const files = readdirSync(job.name).filter((f) => f.includes("tfevents"));
    expect(files).toHaveLength(1);
    const events = readTensorBoardEvents(join(job.name, files[0] as string));
    expect(events[0]?.fileVersion).toBe("brain.Event:2");
    const steps = job.progress().snapshots;
    const scalar = (tag: string) =>
      events.flatMap((e) => e.scalars.filter((s) => s.tag === tag).map((s) => [e.step, s.value]));
    const loss = scalar(TENSORBOARD_TAGS.loss);
    expect(loss.map(([step]) => step)).toEqual(steps.map((s) => s.step));
    expect(loss.at(-1)?.[1]).toBeCloseTo(steps.at(-1)?.meanLoss as number, 5);
    expect(scalar(TENSORBOARD_TAGS.evalLoss).map(([step]) => step)).toEqual(
      steps.filter((s) => s.evalLoss !== undefined).map((s) => s.step),
    );
    const always = [TENSORBOARD_TAGS.learningRate, TENSORBOARD_TAGS.tokensPerSecond];
    // Peak memory is read from /proc (Linux only).
    for (const tag of process.platform === "linux"
      ? [...always, TENSORBOARD_TAGS.peakMemory]
      : always) {
      expect(scalar(tag), tag).toHaveLength(steps.length);
    }
  });
});
