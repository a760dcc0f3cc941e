/**
 * The tuning-job timeline both fakes simulate: queued, then one step every `stepMs` of fake
 * time, ending in success, a planned failure at a given step, or cancellation after a
 * latency. Time moves only when the fake's clock moves (or a poll advances the job in auto
 * mode), so every timestamp is reproducible.
 */

import type { TuningFailureSpec } from "./faults.js";
import { RPC_CODES } from "./google-errors.js";

/** Where a simulated job is. */
export type SimulatedPhase =
  | "queued"
  | "running"
  | "cancelling"
  | "succeeded"
  | "failed"
  | "cancelled";

/** A google.rpc.Status-like error a job ends with. */
export interface SimulatedError {
  code: number;
  message: string;
}

/** How a job's timeline is laid out. */
export interface SimulatedJobOptions {
  /** Fake time (ms since the epoch) the job was created at. */
  createdAtMs: number;
  /** Fake time one step takes. */
  stepMs: number;
  /** Fake time spent queued before the first step. @default 0 */
  queuedMs?: number;
  /** Steps to run, when known at creation (else `onStart` says). */
  totalSteps?: number;
  /** End with `error` once this step is done. */
  failure?: { atStep: number; error: SimulatedError };
}

/** Callbacks the owner of a job hooks into the timeline. */
export interface SimulatedJobHooks {
  /** Leaving the queue at `atMs`: the number of steps to run, or why the job fails at once. */
  start?(atMs: number): number | SimulatedError;
  /** Step `step` finished at `atMs` (e.g. to record a loss snapshot). */
  step?(step: number, atMs: number): void;
}

const TERMINAL: ReadonlySet<SimulatedPhase> = new Set(["succeeded", "failed", "cancelled"]);

/** One simulated tuning job. */
export class SimulatedJob {
  phase: SimulatedPhase;
  /** Fake time this job has lived through. */
  elapsedMs = 0;
  completedSteps = 0;
  totalSteps: number | undefined;
  startedAtMs: number | undefined;
  endedAtMs: number | undefined;
  error: SimulatedError | undefined;
  /** Elapsed time at which a requested cancel takes effect. */
  cancelAtMs: number | undefined;
  /** Fake time of the last change of phase. */
  updatedAtMs: number;
  readonly createdAtMs: number;
  readonly stepMs: number;
  readonly queuedMs: number;
  readonly #failure: SimulatedJobOptions["failure"];
  readonly #hooks: SimulatedJobHooks;

  constructor(options: SimulatedJobOptions, hooks: SimulatedJobHooks = {}) {
    this.createdAtMs = options.createdAtMs;
    this.updatedAtMs = options.createdAtMs;
    this.stepMs = options.stepMs;
    this.queuedMs = options.queuedMs ?? 0;
    this.totalSteps = options.totalSteps;
    this.#failure = options.failure;
    this.#hooks = hooks;
    this.phase = this.queuedMs > 0 ? "queued" : "running";
    if (this.queuedMs === 0) this.advance(0);
  }

  /** True once the job succeeded, failed or was cancelled. */
  get terminal(): boolean {
    return TERMINAL.has(this.phase);
  }

  /** Lets `ms` of fake time pass for this job. */
  advance(ms: number): void {
    if (this.terminal) return;
    this.elapsedMs += ms;
    const horizon =
      this.cancelAtMs === undefined ? this.elapsedMs : Math.min(this.elapsedMs, this.cancelAtMs);
    if (this.startedAtMs === undefined && horizon >= this.queuedMs) {
      const at = this.createdAtMs + this.queuedMs;
      this.startedAtMs = at;
      this.updatedAtMs = at;
      const started = this.#hooks.start?.(at) ?? this.totalSteps ?? 1;
      if (typeof started !== "number") {
        this.#end("failed", at, started);
        return;
      }
      this.totalSteps = Math.max(1, started);
      if (this.phase === "queued") this.phase = "running";
    }
    if (this.startedAtMs !== undefined) {
      const total = this.totalSteps ?? 1;
      const target = Math.min(total, Math.floor((horizon - this.queuedMs) / this.stepMs));
      while (this.completedSteps < target) {
        const step = this.completedSteps + 1;
        const at = this.createdAtMs + this.queuedMs + step * this.stepMs;
        this.completedSteps = step;
        this.#hooks.step?.(step, at);
        if (this.#failure !== undefined && step >= this.#failure.atStep) {
          this.#end("failed", at, this.#failure.error);
          return;
        }
        if (step === total) {
          this.#end("succeeded", at, undefined);
          return;
        }
      }
    }
    if (this.cancelAtMs !== undefined && this.elapsedMs >= this.cancelAtMs) {
      this.#end("cancelled", this.createdAtMs + this.cancelAtMs, {
        code: 1,
        message: "Operation cancelled.",
      });
    }
  }

  /**
   * Asks the job to stop `latencyMs` of fake time from now (best effort: it may finish
   * first). Returns false when it has already ended or a cancel is pending.
   */
  cancel(latencyMs: number, nowMs: number, error?: SimulatedError): boolean {
    if (this.terminal || this.cancelAtMs !== undefined) return false;
    this.cancelAtMs = this.elapsedMs + latencyMs;
    this.phase = "cancelling";
    this.updatedAtMs = nowMs;
    if (error) this.#cancelError = error;
    this.advance(0);
    return true;
  }

  #cancelError: SimulatedError | undefined;

  /** Fake time until the job ends on its own (its last step, its failure or its cancel). */
  remainingMs(): number {
    if (this.terminal) return 0;
    if (this.startedAtMs === undefined)
      return Math.max(this.stepMs, this.queuedMs - this.elapsedMs);
    const end = this.queuedMs + (this.totalSteps ?? 1) * this.stepMs;
    const until = this.cancelAtMs === undefined ? end : Math.min(end, this.cancelAtMs);
    return Math.max(0, until - this.elapsedMs);
  }

  #end(phase: SimulatedPhase, atMs: number, error: SimulatedError | undefined): void {
    this.phase = phase;
    this.endedAtMs = atMs;
    this.updatedAtMs = atMs;
    this.error = phase === "cancelled" ? (this.#cancelError ?? error) : error;
  }
}

/** Runs every job to its end, moving `advance` (the clock) as far as needed. */
export function completeJobs(jobs: Iterable<SimulatedJob>, advance: (ms: number) => void): void {
  const all = [...jobs];
  for (let round = 0; round < 100; round++) {
    let need = 0;
    for (const job of all) need = Math.max(need, job.remainingMs());
    if (need <= 0) return;
    advance(need);
  }
}

/** The `failure` option of a job from a planned failure (`faults.failTuningAtStep`). */
export function plannedFailure(
  planned: TuningFailureSpec | undefined,
): Pick<SimulatedJobOptions, "failure"> {
  if (planned === undefined) return {};
  return {
    failure: {
      atStep: planned.atStep,
      error: {
        code: RPC_CODES[planned.status ?? "INTERNAL"],
        message: planned.message ?? `Tuning failed at step ${planned.atStep}.`,
      },
    },
  };
}
