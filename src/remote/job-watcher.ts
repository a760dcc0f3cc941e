import { TuningFailedError } from "../core/errors.js";
import { type JobStateMachine, ManagedTuningJob } from "../core/job-state.js";
import { poll } from "../core/poll.js";
import { isRetryableError } from "../core/retry.js";
import {
  isTerminalState,
  type JobEvent,
  type TunedModel,
  type WaitOptions,
} from "../core/types.js";

/** How a remote job's status is polled. */
export interface JobWatchSettings {
  /** First interval between status checks. */
  pollIntervalMs: number;
  /** Growth of the interval after each check. */
  pollMultiplier: number;
  /** Cap of the interval. */
  maxPollIntervalMs: number;
  /** Consecutive retryable failures tolerated before the job is declared lost. */
  maxPollFailures: number;
}

/**
 * Polls a remote job's status in the background and feeds it to the job's state machine —
 * the part the Gemini and Vertex jobs share. Polling is lazy: it starts when someone listens
 * (`events()`/`wait()`), stops at a terminal state or on `stop()`, and can start again.
 * Transient failures are logged and retried; persistent ones fail the job with a message that
 * says how to re-attach (the remote job may well still be running).
 */
export class RemoteJobWatcher {
  readonly #machine: JobStateMachine;
  readonly #check: (signal: AbortSignal) => Promise<boolean>;
  readonly #settings: JobWatchSettings;
  #watching: Promise<void> | undefined;
  #stop: AbortController | undefined;
  #lastCheck = 0;

  /** `check` reads the status once, applies it, and says whether the job has ended. */
  constructor(
    machine: JobStateMachine,
    check: (signal: AbortSignal) => Promise<boolean>,
    settings: JobWatchSettings,
  ) {
    this.#machine = machine;
    this.#check = check;
    this.#settings = settings;
  }

  /** Records that the status was just read elsewhere, so the next poll waits an interval. */
  touch(): void {
    this.#lastCheck = Date.now();
  }

  /** Starts polling unless it is running or the job has ended. */
  start(): void {
    const machine = this.#machine;
    if (this.#watching || isTerminalState(machine.state)) return;
    const stop = new AbortController();
    this.#stop = stop;
    let failures = 0;
    const { pollIntervalMs, pollMultiplier, maxPollIntervalMs, maxPollFailures } = this.#settings;
    this.#watching = poll<void>(
      async ({ attempt, signal }) => {
        // The create/getJob call just read the status: wait one interval before the first check.
        if (attempt === 1 && Date.now() - this.#lastCheck < pollIntervalMs) return { done: false };
        try {
          const done = await this.#check(signal);
          failures = 0;
          return done ? { done: true, value: undefined } : { done: false };
        } catch (error) {
          if (stop.signal.aborted || isTerminalState(machine.state)) throw error;
          failures++;
          const message = error instanceof Error ? error.message : String(error);
          if (isRetryableError(error) && failures < maxPollFailures) {
            machine.log("warning", `Status check failed (${message}); trying again`);
            return { done: false };
          }
          machine.fail(
            new TuningFailedError(
              machine.name,
              `Lost track of tuning job ${machine.name}: ${message}. The job may still be running; re-attach later with tuner.getJob("${machine.name}")`,
              { cause: error },
            ),
          );
          return { done: true, value: undefined };
        }
      },
      {
        intervalMs: pollIntervalMs,
        multiplier: pollMultiplier,
        maxIntervalMs: maxPollIntervalMs,
        signal: stop.signal,
      },
    )
      .catch(() => {})
      .finally(() => {
        this.#watching = undefined;
        this.#stop = undefined;
      });
  }

  /** Stops polling; `start()` resumes it. The remote job is not affected. */
  stop(): void {
    this.#stop?.abort();
  }
}

/**
 * A `TuningJob` whose state lives on a remote service: listening (`events()`, `wait()`)
 * starts the background status polling, `refresh()` checks once, `detach()` stops polling.
 * The Gemini and Vertex jobs extend it with their wire formats.
 */
export class RemoteTuningJob extends ManagedTuningJob {
  readonly #watcher: RemoteJobWatcher;
  readonly #check: (signal: AbortSignal | undefined) => Promise<boolean>;

  /** `check` reads the status once, applies it, and says whether the job has ended. */
  constructor(
    machine: JobStateMachine,
    cancel: () => Promise<void>,
    check: (signal: AbortSignal | undefined) => Promise<boolean>,
    settings: JobWatchSettings,
  ) {
    super(machine, cancel);
    this.#check = check;
    this.#watcher = new RemoteJobWatcher(machine, check, settings);
  }

  override events(options: { signal?: AbortSignal } = {}): AsyncIterable<JobEvent> {
    this.#watcher.start();
    return super.events(options);
  }

  override wait(options?: WaitOptions): Promise<TunedModel> {
    this.#watcher.start();
    return super.wait(options);
  }

  /** Checks the status once now (whether or not the job is being watched). */
  async refresh(options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    if (isTerminalState(this.state())) return;
    await this.#check(options.signal);
  }

  /** Stops polling. `events()`/`wait()` start it again. */
  detach(): void {
    this.#watcher.stop();
  }

  /** Records a status read made elsewhere (create, listing), so polling waits an interval. */
  protected markChecked(): void {
    this.#watcher.touch();
  }
}
