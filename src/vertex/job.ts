/**
 * A Vertex AI tuning job: a `RemoteTuningJob` driven by polling `GET v1/{name}`.
 *
 * What progress Vertex gives, and what it does not: the tuningJobs API reports the job's
 * `state`, its times, `error`, and — once the service has read the data —
 * `tuningDataStats` (example count, the number of tuning steps, billable tokens, truncated and
 * dropped examples). It reports **no completed-step count, no percentage and no loss values**
 * while the job runs (training metrics live in Vertex AI Experiments, which tunekit does not
 * read). So `progress().totalSteps` is `tuningStepCount` once known, `completedSteps` stays 0
 * until the job succeeds (then it equals `totalSteps`), `completedPercent` appears only as 100
 * at success, `snapshots` stays empty, and the data stats come as a `log` event (with the
 * parsed stats as `data`) and as `progress().metrics`.
 */
import { TimeoutError, TuningFailedError } from "../core/errors.js";
import { JobStateMachine } from "../core/job-state.js";
import { poll } from "../core/poll.js";
import { isTerminalState } from "../core/types.js";
import { grpcCodeName } from "../remote/errors.js";
import { RemoteTuningJob } from "../remote/job-watcher.js";
import type { VertexApi } from "./api.js";
import {
  describeDataStats,
  progressFromJob,
  toDataStats,
  toJobState,
  type VertexDataStats,
} from "./convert.js";
import { VertexTunedModel } from "./model.js";
import { REQUEST_LABEL_KEY } from "./names.js";
import type { WireTuningJob } from "./wire.js";

/** How a job polls. */
export interface VertexWatchOptions {
  /** First interval between status checks (default 10 s). */
  pollIntervalMs: number;
  /** Growth factor of the interval (default 1.5). */
  pollMultiplier: number;
  /** Cap on one interval (default 60 s). */
  maxPollIntervalMs: number;
  /** How long `cancel()` waits for the job to reach a terminal state (default 120 s). */
  cancelTimeoutMs: number;
  /** Status checks that may fail in a row (after their own retries) before the job is failed (default 10). */
  maxPollFailures: number;
}

/**
 * A running (or finished) Vertex AI tuning job. Polling starts when someone listens
 * (`events()`, `wait()`) or calls `refresh()`, and stops at a terminal state or on `detach()`.
 *
 * @example
 * ```ts
 * const job = await tuner.tune(request);
 * for await (const event of job.events()) {
 *   if (event.type === "log") console.log(event.message); // includes the data stats
 * }
 * const model = await job.wait();
 * ```
 */
export class VertexTuningJob extends RemoteTuningJob {
  readonly #machine: JobStateMachine;
  readonly #api: VertexApi;
  readonly #options: VertexWatchOptions;
  #wire: WireTuningJob;
  #stats: VertexDataStats | undefined;

  /** @internal Built by `VertexTuner` (`tune`, `getJob`). */
  constructor(api: VertexApi, job: WireTuningJob, options: VertexWatchOptions) {
    const machine = new JobStateMachine(job.name ?? "");
    const self: { job?: VertexTuningJob } = {};
    super(
      machine,
      () => (self.job as VertexTuningJob).#cancel(),
      (signal) => (self.job as VertexTuningJob).#check(signal),
      options,
    );
    self.job = this;
    this.#machine = machine;
    this.#api = api;
    this.#options = options;
    this.#wire = job;
    this.apply(job);
  }

  /** The job as Vertex last reported it. */
  get wire(): WireTuningJob {
    return this.#wire;
  }

  /** The raw `JOB_STATE_*` last seen (`state()` gives the shared state). */
  get vertexState(): WireTuningJob["state"] {
    return this.#wire.state;
  }

  /** The training-data stats, once Vertex has read the data. */
  dataStats(): VertexDataStats | undefined {
    return this.#stats;
  }

  /** The value of the `tunekit_request` label (the key to find this job after a lost create). */
  get requestLabel(): string | undefined {
    return this.#wire.labels?.[REQUEST_LABEL_KEY];
  }

  /** @internal Adds a log line to the job's event stream. */
  log(level: "debug" | "info" | "warning", message: string, data?: unknown): void {
    this.#machine.log(level, message, data);
  }

  /** @internal Applies a job fetched elsewhere; true when it reached a terminal state. */
  apply(job: WireTuningJob): boolean {
    this.markChecked();
    this.#wire = job;
    const stats = toDataStats(job.tuningDataStats?.supervisedTuningDataStats);
    if (stats && JSON.stringify(stats) !== JSON.stringify(this.#stats)) {
      this.#stats = stats;
      this.#machine.log("info", describeDataStats(stats), stats);
      if (stats.truncatedExampleCount) {
        this.#machine.log(
          "warning",
          `${stats.truncatedExampleCount} training examples were truncated by Vertex AI (too many tokens for the base model)`,
          { truncatedExampleIndices: stats.truncatedExampleIndices ?? [] },
        );
      }
    }
    const progress = progressFromJob(job);
    const state = toJobState(job.state);
    if (state === "running") this.#machine.start();
    if (state === "succeeded") {
      this.#machine.setProgress(progress);
      this.#machine.succeed(new VertexTunedModel(this.#api, job, this.name));
      return true;
    }
    if (Object.keys(progress).length > 0) this.#machine.setProgress(progress);
    if (state === "cancelled") {
      const message = job.error?.message;
      this.#machine.cancelled(
        `Tuning job ${this.name} was cancelled${message ? `: ${message}` : ""}`,
      );
      return true;
    }
    if (state === "failed") {
      const code = job.error?.code;
      const label = [code === undefined ? undefined : `code ${code}`, grpcCodeName(code), job.state]
        .filter(Boolean)
        .join(" ");
      const message =
        job.state === "JOB_STATE_EXPIRED"
          ? (job.error?.message ?? "the job expired before it could run")
          : (job.error?.message ?? "no message");
      this.#machine.fail(
        new TuningFailedError(this.name, `Tuning job ${this.name} failed: ${message} (${label})`),
      );
      return true;
    }
    return false;
  }

  async #check(signal: AbortSignal | undefined): Promise<boolean> {
    const job = await this.#api.getTuningJob(this.name, { signal });
    return this.apply(job);
  }

  /**
   * `POST {name}:cancel`, then re-poll until the job ends or `cancelTimeoutMs` passes. Vertex
   * cancels asynchronously and best effort: the job passes through CANCELLING (still
   * `running` here) and ends CANCELLED — or SUCCEEDED/FAILED if it finished first.
   */
  async #cancel(): Promise<void> {
    await this.#api.cancelTuningJob(this.name);
    this.#machine.log(
      "info",
      `Cancellation of ${this.name} requested; waiting for the service to stop it`,
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
          `Cancellation of ${this.name} was requested, but the job had not stopped after ${cancelTimeoutMs} ms (state ${this.#wire.state ?? "unknown"}). Vertex AI cancels asynchronously and on a best-effort basis: keep watching with job.wait()`,
          { timeoutMs: cancelTimeoutMs, cause: error },
        );
      }
      throw error;
    }
  }
}
