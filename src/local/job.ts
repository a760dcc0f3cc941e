/**
 * A local LoRA run as a `TuningJob`: drives the common `JobStateMachine` from the native
 * trainer's events, writes every event to `metrics.jsonl`, and forwards metrics to a reporter.
 */
import { appendFileSync, existsSync, renameSync, writeFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { LocalTrainingError, TuningCancelledError } from "../core/errors.js";
import { type JobStateMachine, ManagedTuningJob } from "../core/job-state.js";
import type { JobState, TunedModelInfo, TuningSnapshot } from "../core/types.js";
import { fromNativeError } from "./errors.js";
import type { NativeCancelToken, NativeModelHandle } from "./native.js";
import {
  loadTrainingAddon,
  type NativeTrainEvent,
  type NativeTrainOptions,
  type NativeTrainSequence,
} from "./native-train.js";
import type { TemplateDescriptor } from "./prompt/template.js";
import { LocalTunedModel, METRICS_FILE, RUN_FILE } from "./tuned-model.js";

/** Per-step numbers of a local run, as `progress.metrics` carries them. */
export interface LocalStepMetrics {
  loss: number;
  learningRate: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedMs: number;
  peakRssBytes?: number;
  evalLoss?: number;
}

/**
 * One line of `metrics.jsonl`, also what a {@link LocalReporter} receives. `snapshot` lines
 * are the loss curve (`tunekit plot` reads them); `step` lines carry every metric.
 */
export type LocalRunRecord =
  | { type: "state"; state: JobState; at: string }
  | { type: "started"; totalSteps: number; resumedFromStep: number; at: string }
  | {
      type: "step";
      step: number;
      totalSteps: number;
      epoch: number;
      metrics: LocalStepMetrics;
      at: string;
    }
  | { type: "snapshot"; snapshot: TuningSnapshot; at: string }
  | { type: "checkpoint"; step: number; path: string; at: string }
  | {
      type: "log";
      level: "debug" | "info" | "warning";
      message: string;
      data?: unknown;
      at: string;
    }
  | { type: "error"; error: { name: string; code: string; message: string }; at: string };

/**
 * Receives every record of a run as it happens (forward them to an experiment tracker).
 * It may be async; it is not awaited, and a throw is logged once as a warning, never fatal.
 */
export type LocalReporter = (record: LocalRunRecord) => void | Promise<void>;

/** What `tunekit-run.json` holds. */
export interface RunRecord {
  version: 1;
  state: JobState;
  baseModel: string;
  baseModelPath: string;
  displayName?: string;
  description?: string;
  createTime: string;
  updateTime: string;
  totalSteps?: number;
  completedSteps?: number;
  lastCheckpoint?: string;
  hyperparameters: TunedModelInfo["hyperparameters"];
  native: Omit<NativeTrainOptions, "outputDir" | "resume">;
  error?: string;
  /** Early stopping ended the run before its last step. */
  stoppedEarly?: boolean;
  /** The evaluation with the lowest validation loss. */
  best?: { step: number; evalLoss: number; restored: boolean };
}

/** The sequences of a run, kept for resume (`tunekit-sequences.json`). */
export const SEQUENCES_FILE = "tunekit-sequences.json";

export async function readRunRecord(dir: string): Promise<RunRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, RUN_FILE), "utf8")) as RunRecord;
  } catch {
    return undefined;
  }
}

/**
 * The step of the newest complete `checkpoint-N` in `dir` (one with its trainer state: they
 * are renamed into place only once complete), or undefined when there is none.
 */
export async function newestCheckpointStep(dir: string): Promise<number | undefined> {
  const steps = (await readdir(dir).catch(() => [] as string[]))
    .map((name) => Number(/^checkpoint-(\d+)$/.exec(name)?.[1] ?? Number.NaN))
    .filter((step) => Number.isSafeInteger(step))
    .sort((a, b) => b - a);
  for (const step of steps) {
    if (existsSync(join(dir, `checkpoint-${step}`, "trainer_state.json"))) return step;
  }
  return undefined;
}

/** Writes `tunekit-run.json` atomically (synchronously: it is small, and its order matters). */
export function writeRunRecord(dir: string, record: RunRecord): void {
  const file = join(dir, RUN_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(tmp, file);
}

/** A local tuning job. `name` is its output directory (the adapter directory once it succeeds). */
export class LocalTuningJob extends ManagedTuningJob {
  /** Absolute output directory: checkpoints, metrics.jsonl, then the adapter. */
  readonly outputDir: string;
  readonly #machine: JobStateMachine;
  readonly #resume: (() => Promise<LocalTuningJob>) | undefined;

  /** @internal Built by `LocalTuner`. */
  constructor(
    machine: JobStateMachine,
    cancel: () => Promise<void>,
    resume?: () => Promise<LocalTuningJob>,
  ) {
    super(machine, cancel);
    this.outputDir = machine.name;
    this.#machine = machine;
    this.#resume = resume;
  }

  /**
   * Continues a cancelled, failed or interrupted run from its last complete checkpoint, as a
   * new job in the same directory; the loss curve continues where it stopped.
   *
   * @throws LocalTrainingError when the job is still running or has already succeeded.
   */
  async resume(): Promise<LocalTuningJob> {
    const state = this.#machine.state;
    if (state === "running" || state === "pending" || state === "succeeded" || !this.#resume) {
      throw new LocalTrainingError(
        `Cannot resume ${this.name}: the job is ${state}; only a cancelled, failed or interrupted run resumes`,
      );
    }
    return this.#resume();
  }
}

/** Everything one native run needs. */
export interface NativeRunParams {
  machine: JobStateMachine;
  baseModel: string;
  baseModelPath: string;
  outputDir: string;
  template: TemplateDescriptor;
  sequences: NativeTrainSequence[];
  validation: NativeTrainSequence[] | undefined;
  options: NativeTrainOptions;
  record: RunRecord;
  reporter: LocalReporter | undefined;
  /** Writes the run's TensorBoard events; a failure is logged once and stops only it. */
  tensorboard?: LocalReporter;
  modelInfo: Partial<TunedModelInfo>;
  /** The base model already loaded by the tuner (trained without a second load); else `baseModelPath` is loaded. */
  model?: NativeModelHandle;
  /** Warnings found while preparing the run (truncation, …), logged first. */
  warnings?: readonly string[];
  /**
   * Snapshots of earlier segments (a resumed run), so `progress()` shows the whole curve;
   * those after the checkpoint the native side resumes from are dropped when it starts.
   */
  previousSnapshots?: readonly TuningSnapshot[];
}

/** Starts the native trainer and wires its events to the job. Returns the cancel function. */
export function startNativeRun(params: NativeRunParams): () => Promise<void> {
  const { machine, outputDir, reporter, record } = params;
  const addon = loadTrainingAddon();
  const cancel: NativeCancelToken = new addon.CancelToken();
  const metricsFile = join(outputDir, METRICS_FILE);
  let reporterFailed = false;
  let metricsFailed = false;
  let tensorboardFailed = false;
  let nanSeen = false;

  const write = (line: LocalRunRecord) => {
    try {
      appendFileSync(metricsFile, `${JSON.stringify(line)}\n`);
    } catch (error) {
      if (!metricsFailed) {
        machine.log("warning", `could not append to ${metricsFile}: ${String(error)}`);
      }
      metricsFailed = true;
    }
    if (params.tensorboard && !tensorboardFailed) {
      try {
        params.tensorboard(line);
      } catch (error) {
        tensorboardFailed = true;
        machine.log(
          "warning",
          `could not write TensorBoard events in ${outputDir}: ${String(error)}`,
        );
      }
    }
    if (reporter) {
      try {
        const pending = reporter(line);
        if (pending && typeof (pending as Promise<void>).catch === "function") {
          (pending as Promise<void>).catch((error: unknown) => reporterError(error));
        }
      } catch (error) {
        reporterError(error);
      }
    }
  };
  const reporterError = (error: unknown) => {
    if (reporterFailed) return;
    reporterFailed = true;
    log("warning", `the metrics reporter threw (further errors are ignored): ${String(error)}`);
  };
  const now = () => new Date().toISOString();
  const log = (level: "debug" | "info" | "warning", message: string, data?: unknown) => {
    machine.log(level, message, data);
    write(
      data === undefined
        ? { type: "log", level, message, at: now() }
        : { type: "log", level, message, data, at: now() },
    );
  };
  const setState = (state: JobState) => write({ type: "state", state, at: now() });
  const saveRecord = (patch: Partial<RunRecord>) => {
    Object.assign(record, patch, { updateTime: now() });
    try {
      writeRunRecord(outputDir, record);
    } catch (error) {
      log("warning", `could not update ${RUN_FILE}: ${String(error)}`);
    }
  };

  for (const warning of params.warnings ?? []) log("warning", warning);

  const onEvent = (event: NativeTrainEvent) => {
    // Runs from the native thread's queue: it must never throw.
    try {
      handle(event);
    } catch (error) {
      cancel.cancel();
      machine.fail(error instanceof Error ? error : new Error(String(error)));
    }
  };

  const handle = (event: NativeTrainEvent) => {
    switch (event.kind) {
      case "started": {
        const totalSteps = event.totalSteps ?? 0;
        const resumedFromStep = event.resumedFromStep ?? 0;
        machine.start();
        setState("running");
        write({ type: "started", totalSteps, resumedFromStep, at: now() });
        if (resumedFromStep > 0)
          log("info", `resumed from the checkpoint of step ${resumedFromStep}`);
        // The native side says which checkpoint it continues from; the record may have lagged
        // it (a process killed between writing a checkpoint and announcing it), and steps
        // logged after that checkpoint are done again, so earlier snapshots stop at it.
        const previous = (params.previousSnapshots ?? []).filter((s) => s.step <= resumedFromStep);
        machine.setProgress({
          completedSteps: resumedFromStep,
          totalSteps,
          completedPercent: totalSteps > 0 ? (100 * resumedFromStep) / totalSteps : 0,
          snapshots: previous,
        });
        const patch: Partial<RunRecord> = { state: "running", totalSteps };
        if (event.path)
          Object.assign(patch, { lastCheckpoint: event.path, completedSteps: resumedFromStep });
        saveRecord(patch);
        return;
      }
      case "step": {
        const step = event.step ?? 0;
        const totalSteps = event.totalSteps ?? 0;
        const loss = event.loss ?? Number.NaN;
        const epochs = event.epoch ?? 0;
        const epoch = Math.max(1, Math.ceil(epochs - 1e-9));
        const at = now();
        const metrics: LocalStepMetrics = {
          loss,
          learningRate: event.learningRate ?? 0,
          gradNorm: event.gradNorm ?? 0,
          tokensPerSecond: event.tokensPerSecond ?? 0,
          elapsedMs: event.elapsedMs ?? 0,
        };
        if (typeof event.peakRssBytes === "number") metrics.peakRssBytes = event.peakRssBytes;
        if (typeof event.evalLoss === "number") metrics.evalLoss = event.evalLoss;
        write({ type: "step", step, totalSteps, epoch: epochs, metrics, at });
        if (!Number.isFinite(loss)) {
          if (nanSeen) return;
          nanSeen = true;
          cancel.cancel();
          const error = new LocalTrainingError(
            `the training loss became ${loss} at step ${step}: training diverged`,
            { hint: "Lower the learning rate (hyperparameters.learningRate) or the LoRA alpha" },
          );
          write({
            type: "error",
            error: { name: error.name, code: error.code, message: error.message },
            at,
          });
          setState("failed");
          saveRecord({ state: "failed", completedSteps: step, error: error.message });
          machine.fail(error);
          return;
        }
        const snapshot: TuningSnapshot = { step, epoch, meanLoss: loss, computeTime: at };
        if (typeof event.evalLoss === "number") snapshot.evalLoss = event.evalLoss;
        write({ type: "snapshot", snapshot, at });
        const { loss: _loss, evalLoss: _eval, ...progressMetrics } = metrics;
        machine.setProgress({
          completedSteps: step,
          totalSteps,
          completedPercent: totalSteps > 0 ? (100 * step) / totalSteps : 0,
          epoch,
          snapshots: [snapshot],
          metrics: progressMetrics,
        });
        return;
      }
      case "checkpoint": {
        const path = event.path ?? "";
        const step = Number(/checkpoint-(\d+)$/.exec(path)?.[1] ?? 0);
        write({ type: "checkpoint", step, path, at: now() });
        machine.log("info", `checkpoint saved: ${path}`, { path, step });
        saveRecord({ lastCheckpoint: path, completedSteps: step });
        return;
      }
      case "done": {
        if (machine.state === "failed") return;
        const completedSteps = event.step ?? 0;
        const lastCheckpoint = event.lastCheckpoint ?? undefined;
        if (event.cancelled) {
          const where = lastCheckpoint
            ? `; the last checkpoint is ${lastCheckpoint} (resume with tuner.resume(dir), or \`tunekit resume ${outputDir}\`)`
            : "; no checkpoint was saved yet";
          setState("cancelled");
          const patch: Partial<RunRecord> = { state: "cancelled", completedSteps };
          if (lastCheckpoint) patch.lastCheckpoint = lastCheckpoint;
          saveRecord(patch);
          machine.cancelled(
            `Tuning job ${machine.name} was cancelled after step ${completedSteps}${where}`,
          );
          return;
        }
        const patch: Partial<RunRecord> = { state: "succeeded", completedSteps };
        if (lastCheckpoint) patch.lastCheckpoint = lastCheckpoint;
        if (event.stoppedEarly) patch.stoppedEarly = true;
        if (typeof event.bestStep === "number" && typeof event.bestEvalLoss === "number") {
          patch.best = {
            step: event.bestStep,
            evalLoss: event.bestEvalLoss,
            restored: event.restoredBest === true,
          };
        }
        saveRecord(patch);
        if (event.stoppedEarly) {
          log(
            "info",
            `stopped early after step ${completedSteps}: the validation loss stopped improving`,
            { step: completedSteps },
          );
        }
        if (patch.best) {
          log(
            "info",
            patch.best.restored
              ? `the adapter is the best evaluation's: step ${patch.best.step}, validation loss ${patch.best.evalLoss.toPrecision(4)}`
              : `best validation loss ${patch.best.evalLoss.toPrecision(4)} at step ${patch.best.step}`,
            patch.best,
          );
        }
        const model = new LocalTunedModel(
          outputDir,
          params.baseModel,
          params.baseModelPath,
          params.template,
          {
            ...params.modelInfo,
            snapshots: machine.progress.snapshots,
            updateTime: record.updateTime,
          },
        );
        setState("succeeded");
        machine.succeed(model);
        return;
      }
      case "error": {
        if (machine.state === "failed") return;
        const error = fromNativeError(event.error ?? { code: "internal", message: "no details" }, {
          path: params.baseModelPath,
        });
        write({
          type: "error",
          error: { name: error.name, code: error.code, message: error.message },
          at: now(),
        });
        setState("failed");
        saveRecord({ state: "failed", error: error.message });
        machine.fail(error);
        return;
      }
    }
  };

  try {
    if (params.model) {
      addon.trainModel(
        params.model,
        params.sequences,
        params.validation ?? null,
        params.options,
        cancel,
        onEvent,
      );
    } else {
      addon.train(
        params.baseModelPath,
        params.sequences,
        params.validation ?? null,
        params.options,
        cancel,
        onEvent,
      );
    }
  } catch (error) {
    const failure = fromNativeError(error, { path: params.baseModelPath });
    setState("failed");
    machine.fail(failure);
  }

  return async () => {
    cancel.cancel();
    // Resolves once the trainer has stopped (within one micro-batch) and the job is terminal.
    await machine.outcome.catch((error: unknown) => {
      if (!(error instanceof TuningCancelledError)) return;
    });
  };
}
