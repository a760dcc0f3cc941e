/**
 * A Gemini tuning job: a `RemoteTuningJob` whose state machine is driven by polling the
 * long-running operation (`tunedModels/{id}/operations/{op}`) or, when no operation is at
 * hand, the tuned model itself (`state`, `tuningTask.snapshots`).
 */
import {
  ApiError,
  NotFoundError,
  TimeoutError,
  TuningFailedError,
  UnsupportedOptionError,
} from "../core/errors.js";
import { JobStateMachine } from "../core/job-state.js";
import { poll } from "../core/poll.js";
import { isTerminalState, type TuningSnapshot } from "../core/types.js";
import { grpcCodeName } from "../remote/errors.js";
import { RemoteTuningJob } from "../remote/job-watcher.js";
import type { GeminiApi } from "./api.js";
import { progressFromMetadata, progressFromModel } from "./convert.js";
import { GeminiTunedModel } from "./model.js";
import type { WireOperation, WireTunedModel } from "./wire.js";

/** How a job polls. */
export interface WatchOptions {
  /** First interval between status checks (default 5 s). */
  pollIntervalMs: number;
  /** Growth factor of the interval (default 1.5). */
  pollMultiplier: number;
  /** Cap on one interval (default 30 s). */
  maxPollIntervalMs: number;
  /** How long `cancel()` waits for the job to reach a terminal state (default 60 s). */
  cancelTimeoutMs: number;
  /** Status checks that may fail in a row (after their own retries) before the job is failed (default 10). */
  maxPollFailures: number;
}

/** Cancelling is not possible here; the message names `deleteModel` as the alternative. */
export class CancelUnsupportedError extends UnsupportedOptionError {
  readonly tunedModel: string;
  constructor(tunedModel: string, message: string, options: { cause?: unknown } = {}) {
    super("gemini", "cancel", message, {
      ...options,
      hint: `To stop paying attention to this run, delete the model: await tuner.deleteModel("${tunedModel}"). tunekit never deletes on its own.`,
    });
    this.tunedModel = tunedModel;
  }
}

/**
 * A running (or finished) Gemini tuning job. Polling starts when someone listens
 * (`events()`, `wait()`) or calls `refresh()`, and stops at a terminal state or on `detach()`,
 * so a script that only starts a job and exits is not kept alive.
 *
 * @example
 * ```ts
 * const job = await tuner.tune(request);
 * for await (const event of job.events()) {
 *   if (event.type === "progress") console.log(`${event.progress.completedPercent ?? 0}%`);
 * }
 * const model = await job.wait();
 * ```
 */
export class GeminiTuningJob extends RemoteTuningJob {
  /** `tunedModels/{id}`. */
  readonly tunedModelName: string;
  readonly #machine: JobStateMachine;
  readonly #api: GeminiApi;
  readonly #options: WatchOptions;
  #operation: string | undefined;
  #cancelRequested = false;

  /** @internal Built by `GeminiTuner` (`tune`, `getJob`). */
  constructor(
    api: GeminiApi,
    target: { tunedModel: string; operation?: string | undefined },
    options: WatchOptions,
  ) {
    const machine = new JobStateMachine(target.operation ?? target.tunedModel);
    const self: { job?: GeminiTuningJob } = {};
    super(
      machine,
      () => (self.job as GeminiTuningJob).#cancel(),
      (signal) => (self.job as GeminiTuningJob).#check(signal),
      options,
    );
    self.job = this;
    this.#machine = machine;
    this.#api = api;
    this.#options = options;
    this.tunedModelName = target.tunedModel;
    this.#operation = target.operation;
  }

  /** `tunedModels/{id}/operations/{op}` when known (after create, or found by listing operations). */
  get operationName(): string | undefined {
    return this.#operation;
  }

  /** @internal Adds a log line to the job's event stream. */
  log(level: "debug" | "info" | "warning", message: string, data?: unknown): void {
    this.#machine.log(level, message, data);
  }

  /** @internal Applies an operation fetched elsewhere (the create response, a listing). */
  async applyOperation(op: WireOperation, signal?: AbortSignal): Promise<boolean> {
    this.markChecked();
    if (op.name && !this.#operation) this.#operation = op.name;
    const progress = progressFromMetadata(op.metadata);
    if (!op.done) {
      this.#machine.start();
      this.#machine.setProgress(progress);
      return false;
    }
    if (op.error) {
      this.#machine.setProgress(progress);
      const code = op.error.code;
      const message = op.error.message ?? "no message";
      if (code === 1) {
        this.#machine.cancelled(`Tuning job ${this.name} was cancelled: ${message}`);
      } else {
        const label = [code === undefined ? undefined : `code ${code}`, grpcCodeName(code)]
          .filter(Boolean)
          .join(" ");
        this.#machine.fail(
          new TuningFailedError(
            this.name,
            `Tuning job ${this.name} failed: ${message}${label ? ` (${label})` : ""}`,
          ),
        );
      }
      return true;
    }
    let wire: WireTunedModel | undefined = op.response;
    if (!wire?.name || !wire.state) {
      // The response should be the TunedModel; when it is partial, read the model itself.
      wire = await this.#api.getTunedModel(this.tunedModelName, { signal });
    }
    this.#finishWithModel(wire, progress);
    return true;
  }

  /** @internal Applies a tuned model's state (used when no operation is at hand). */
  applyModel(model: WireTunedModel): boolean {
    this.markChecked();
    const progress = progressFromModel(model);
    switch (model.state) {
      case "ACTIVE":
        this.#finishWithModel(model, progress);
        return true;
      case "FAILED":
        this.#machine.setProgress(progress);
        if (this.#cancelRequested) {
          this.#machine.cancelled(
            `Tuning job ${this.name} was cancelled (the model is now FAILED)`,
          );
        } else {
          this.#machine.fail(
            new TuningFailedError(
              this.name,
              `Tuning job ${this.name} failed: ${this.tunedModelName} is in state FAILED`,
            ),
          );
        }
        return true;
      default:
        this.#machine.start();
        this.#machine.setProgress(progress);
        return false;
    }
  }

  #finishWithModel(wire: WireTunedModel, progress: ReturnType<typeof progressFromModel>): void {
    const { "@type": _type, ...model } = wire as WireTunedModel & { "@type"?: string };
    const fromModel = progressFromModel({ ...model, state: "ACTIVE" });
    const byStep = new Map<number, TuningSnapshot>();
    for (const snapshot of [...(fromModel.snapshots ?? []), ...(progress.snapshots ?? [])]) {
      byStep.set(snapshot.step, snapshot);
    }
    const snapshots = [...byStep.values()].sort((a, b) => a.step - b.step);
    const final = { ...fromModel, ...progress, completedPercent: 100 };
    if (snapshots.length > 0) final.snapshots = snapshots;
    if (final.totalSteps !== undefined) final.completedSteps = final.totalSteps;
    this.#machine.setProgress(final);
    this.#machine.succeed(new GeminiTunedModel(this.#api, model, this.tunedModelName));
  }

  /** One status check; true when the job reached a terminal state. */
  async #check(signal: AbortSignal | undefined): Promise<boolean> {
    if (this.#operation) {
      try {
        const op = await this.#api.getOperation(this.#operation, { signal });
        return await this.applyOperation(op, signal);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        this.#machine.log(
          "warning",
          `Operation ${this.#operation} is not readable (404); watching ${this.tunedModelName} instead`,
        );
        this.#operation = undefined;
      }
    }
    const model = await this.#api.getTunedModel(this.tunedModelName, { signal });
    return this.applyModel(model);
  }

  async #findOperation(signal?: AbortSignal): Promise<string | undefined> {
    const op = await findTuningOperation(this.#api, this.tunedModelName, signal);
    if (op?.name) this.#operation = op.name;
    return this.#operation;
  }

  async #cancel(): Promise<void> {
    this.#cancelRequested = true;
    const operation = this.#operation ?? (await this.#findOperation());
    if (!operation) {
      throw new CancelUnsupportedError(
        this.tunedModelName,
        `Cannot cancel ${this.tunedModelName}: the service lists no tuning operation for it, and only an operation can be cancelled (POST v1/tunedModels/{id}/operations/{op}:cancel). Delete the model with deleteModel if you no longer want it`,
      );
    }
    try {
      await this.#api.cancelOperation(operation);
    } catch (error) {
      if (isUnsupported(error)) {
        throw new CancelUnsupportedError(
          this.tunedModelName,
          `The service does not support cancelling ${operation} (${(error as ApiError).message}). Delete the model with deleteModel if you no longer want it`,
          { cause: error },
        );
      }
      throw error;
    }
    this.#machine.log(
      "info",
      `Cancellation of ${operation} requested; waiting for the service to stop it`,
    );
    const { cancelTimeoutMs, pollIntervalMs, maxPollIntervalMs } = this.#options;
    try {
      await poll<void>(
        async ({ signal }) => {
          if (isTerminalState(this.#machine.state)) return { done: true, value: undefined };
          return (await this.#check(signal)) ? { done: true, value: undefined } : { done: false };
        },
        {
          intervalMs: Math.min(pollIntervalMs, 1_000),
          multiplier: 1.5,
          maxIntervalMs: maxPollIntervalMs,
          timeoutMs: cancelTimeoutMs,
        },
      );
    } catch (error) {
      if (error instanceof TimeoutError) {
        throw new TimeoutError(
          `Cancellation of ${this.name} was requested, but the job had not stopped after ${cancelTimeoutMs} ms. The service cancels asynchronously and on a best-effort basis: keep watching with job.wait(), or delete the model with tuner.deleteModel("${this.tunedModelName}")`,
          { timeoutMs: cancelTimeoutMs, cause: error },
        );
      }
      throw error;
    }
  }
}

/** True for the answers a server gives when it lacks a method: 404, 405, 501 / UNIMPLEMENTED. */
export function isUnsupported(error: unknown): boolean {
  return (
    error instanceof ApiError &&
    (error.httpStatus === 404 ||
      error.httpStatus === 405 ||
      error.httpStatus === 501 ||
      error.status === "UNIMPLEMENTED")
  );
}

/**
 * The tuning operation of `tunedModel`, found through `GET tunedModels/{id}/operations`
 * (the running one first). Undefined when the server lists none or does not implement listing.
 */
export async function findTuningOperation(
  api: GeminiApi,
  tunedModel: string,
  signal?: AbortSignal,
): Promise<WireOperation | undefined> {
  let operations: WireOperation[];
  try {
    const response = await api.listOperations(tunedModel, {}, { signal });
    operations = response.operations ?? [];
  } catch (error) {
    if (isUnsupported(error)) return undefined;
    throw error;
  }
  const own = operations.filter((op) => op.name?.startsWith(`${tunedModel}/operations/`));
  return own.find((op) => !op.done) ?? own[0];
}
