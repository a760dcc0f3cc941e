import { raceAbort } from "./abort.js";
import { TuningCancelledError, TuningFailedError, toAbortedError } from "./errors.js";
import {
  isTerminalState,
  type JobEvent,
  type JobState,
  type Progress,
  type TunedModel,
  type TuningJob,
  type TuningSnapshot,
  type WaitOptions,
} from "./types.js";

/** How many past log events a new subscriber receives. */
const MAX_REPLAYED_LOGS = 100;

const ALLOWED: Record<JobState, readonly JobState[]> = {
  pending: ["running", "succeeded", "failed", "cancelled"],
  running: ["succeeded", "failed", "cancelled"],
  succeeded: [],
  failed: [],
  cancelled: [],
};

/** One subscriber's queue of undelivered events. */
interface Subscriber {
  queue: JobEvent[];
  wake: (() => void) | undefined;
}

/**
 * The state machine and event stream behind every `TuningJob`. A backend drives it
 * (`start`, `setProgress`, `addSnapshot`, `succeed`, `fail`, `cancelled`); callers read
 * it through the `TuningJob` interface of {@link ManagedTuningJob}.
 *
 * Guarantees: transitions only move forward; snapshots are deduplicated by step and
 * emitted once; every subscriber sees every event after it subscribed, starting with
 * the current state; the outcome settles exactly once.
 */
export class JobStateMachine {
  readonly name: string;
  #state: JobState = "pending";
  #progress: Progress = { completedSteps: 0, snapshots: [] };
  #subscribers = new Set<Subscriber>();
  /** Recent log events, replayed to late subscribers so warnings logged at start are not lost. */
  #logs: JobEvent[] = [];
  #outcome: Promise<TunedModel>;
  #resolve!: (model: TunedModel) => void;
  #reject!: (error: Error) => void;
  #now: () => Date;

  constructor(name: string, options: { now?: () => Date } = {}) {
    this.name = name;
    this.#now = options.now ?? (() => new Date());
    this.#outcome = new Promise<TunedModel>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The outcome may never be awaited; a failure must not become an unhandled rejection.
    this.#outcome.catch(() => {});
  }

  get state(): JobState {
    return this.#state;
  }

  get progress(): Progress {
    return this.#progress;
  }

  /** The job's final result: settles exactly once, when a terminal state is reached. */
  get outcome(): Promise<TunedModel> {
    return this.#outcome;
  }

  /** pending → running. Ignored when already running or finished. */
  start(): void {
    if (this.#state === "pending") this.#transition("running");
  }

  /**
   * Merges new progress. Snapshots may be the full list so far or only new ones: those
   * with a step not seen before are emitted as `snapshot` events, in step order.
   */
  setProgress(update: Partial<Progress>): void {
    if (isTerminalState(this.#state)) return;
    const known = new Set(this.#progress.snapshots.map((s) => s.step));
    const fresh: TuningSnapshot[] = [];
    for (const snapshot of update.snapshots ?? []) {
      if (known.has(snapshot.step)) continue;
      known.add(snapshot.step); // also drops repeats within this update
      fresh.push(snapshot);
    }
    fresh.sort((a, b) => a.step - b.step);
    const snapshots = fresh.length
      ? [...this.#progress.snapshots, ...fresh].sort((a, b) => a.step - b.step)
      : this.#progress.snapshots;
    const next: Progress = { ...this.#progress, ...stripUndefined(update), snapshots };
    const changed = JSON.stringify(next) !== JSON.stringify(this.#progress);
    this.#progress = next;
    for (const snapshot of fresh) this.#emit({ type: "snapshot", snapshot, at: this.#stamp() });
    if (changed) this.#emit({ type: "progress", progress: next, at: this.#stamp() });
  }

  /** Adds one snapshot (shorthand for `setProgress({ snapshots: [snapshot] })`). */
  addSnapshot(snapshot: TuningSnapshot): void {
    this.setProgress({ snapshots: [snapshot] });
  }

  /** Emits a log line to subscribers. */
  log(level: "debug" | "info" | "warning", message: string, data?: unknown): void {
    const event: JobEvent =
      data === undefined
        ? { type: "log", level, message, at: this.#stamp() }
        : { type: "log", level, message, data, at: this.#stamp() };
    this.#logs.push(event);
    if (this.#logs.length > MAX_REPLAYED_LOGS) this.#logs.shift();
    this.#emit(event);
  }

  succeed(model: TunedModel): void {
    if (!this.#transition("succeeded")) return;
    this.#resolve(model);
    this.#closeAll();
  }

  fail(error: Error): void {
    if (isTerminalState(this.#state)) return;
    const failure =
      error instanceof TuningFailedError
        ? error
        : new TuningFailedError(this.name, `Tuning job ${this.name} failed: ${error.message}`, {
            cause: error,
          });
    this.#emit({ type: "error", error: failure, at: this.#stamp() });
    this.#transition("failed");
    this.#reject(failure);
    this.#closeAll();
  }

  cancelled(message?: string): void {
    if (!this.#transition("cancelled")) return;
    this.#reject(new TuningCancelledError(this.name, message));
    this.#closeAll();
  }

  /**
   * A fresh stream of events. It starts with the current state, the most recent log
   * events (up to 100) and the progress so far, then yields each later event, and ends after a terminal state or
   * when `signal` fires.
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent, void, undefined> {
    const { signal } = options;
    const subscriber: Subscriber = { queue: [], wake: undefined };
    subscriber.queue.push({ type: "state", state: this.#state, at: this.#stamp() });
    subscriber.queue.push(...this.#logs);
    if (this.#progress.completedSteps > 0 || this.#progress.snapshots.length > 0) {
      subscriber.queue.push({ type: "progress", progress: this.#progress, at: this.#stamp() });
    }
    const terminalAtStart = isTerminalState(this.#state);
    if (!terminalAtStart) this.#subscribers.add(subscriber);
    const onAbort = () => subscriber.wake?.();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        if (signal?.aborted) return;
        const event = subscriber.queue.shift();
        if (event) {
          yield event;
          if (event.type === "state" && isTerminalState(event.state)) return;
          continue;
        }
        if (terminalAtStart || !this.#subscribers.has(subscriber)) return;
        await new Promise<void>((resolve) => {
          subscriber.wake = resolve;
        });
        subscriber.wake = undefined;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#subscribers.delete(subscriber);
    }
  }

  /** Waits for the outcome; `signal`/`timeoutMs` stop the waiting, never the job. */
  wait(options: WaitOptions = {}): Promise<TunedModel> {
    if (options.signal?.aborted) return Promise.reject(toAbortedError(options.signal));
    return raceAbort(this.#outcome, {
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      what: `tuning job ${this.name}`,
    });
  }

  #transition(to: JobState): boolean {
    const from = this.#state;
    if (from === to) return false;
    if (!ALLOWED[from].includes(to)) return false;
    this.#state = to;
    this.#emit({ type: "state", state: to, previous: from, at: this.#stamp() });
    return true;
  }

  #emit(event: JobEvent): void {
    for (const subscriber of this.#subscribers) {
      subscriber.queue.push(event);
      subscriber.wake?.();
    }
  }

  #closeAll(): void {
    // Subscribers drain their queues (which end with the terminal state) and then stop.
    for (const subscriber of this.#subscribers) subscriber.wake?.();
    this.#subscribers.clear();
  }

  #stamp(): string {
    return this.#now().toISOString();
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * A `TuningJob` backed by a {@link JobStateMachine}. Backends create one, keep the
 * machine to drive it, and hand the job to the caller.
 *
 * @example
 * ```ts
 * const machine = new JobStateMachine("runs/demo");
 * const job = new ManagedTuningJob(machine, async () => trainer.cancel());
 * machine.start();
 * ```
 */
export class ManagedTuningJob implements TuningJob {
  readonly #machine: JobStateMachine;
  readonly #cancel: () => Promise<void>;

  constructor(machine: JobStateMachine, cancel: () => Promise<void>) {
    this.#machine = machine;
    this.#cancel = cancel;
  }

  get name(): string {
    return this.#machine.name;
  }

  state(): JobState {
    return this.#machine.state;
  }

  progress(): Progress {
    return this.#machine.progress;
  }

  events(options: { signal?: AbortSignal } = {}): AsyncIterable<JobEvent> {
    return this.#machine.events(options);
  }

  wait(options?: WaitOptions): Promise<TunedModel> {
    return this.#machine.wait(options);
  }

  /** Asks the backend to stop the job. A job already finished is left as it is. */
  async cancel(): Promise<void> {
    if (isTerminalState(this.#machine.state)) return;
    await this.#cancel();
  }
}
