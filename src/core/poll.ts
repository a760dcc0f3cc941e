import { anySignal, sleep } from "./abort.js";
import { TimeoutError, toAbortedError } from "./errors.js";

/** What one check of a polled resource found. */
export type PollResult<T> =
  | { done: true; value: T }
  | { done: false /** Overrides the next interval, e.g. from a server hint. */; delayMs?: number };

/** How often and how long to poll. */
export interface PollOptions {
  /** First interval (default 1 s). */
  intervalMs?: number;
  /** Intervals grow by this factor after each unfinished check (default 1.5). */
  multiplier?: number;
  /** Cap on one interval (default 30 s). */
  maxIntervalMs?: number;
  /** ± fraction of random jitter applied to each interval (default 0.1). */
  jitter?: number;
  /** Overall time limit; past it `poll` rejects with `TimeoutError`. */
  timeoutMs?: number;
  /** Stops polling at once with `AbortedError`; every sleep is cancellable. */
  signal?: AbortSignal | undefined;
  random?: () => number;
}

/**
 * Calls `check` until it reports done, sleeping a growing, jittered interval between
 * checks. Errors thrown by `check` end the polling (retry inside `check` if needed).
 *
 * @example
 * ```ts
 * const op = await poll(async ({ signal }) => {
 *   const op = await getOperation(name, { signal });
 *   return op.done ? { done: true, value: op } : { done: false };
 * }, { intervalMs: 2_000, timeoutMs: 3_600_000 });
 * ```
 */
export async function poll<T>(
  check: (context: { attempt: number; signal: AbortSignal }) => Promise<PollResult<T>>,
  options: PollOptions = {},
): Promise<T> {
  const multiplier = options.multiplier ?? 1.5;
  const maxInterval = options.maxIntervalMs ?? 30_000;
  const jitter = options.jitter ?? 0.1;
  const random = options.random ?? Math.random;
  const timeout =
    options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
  const signal = anySignal(options.signal, timeout) ?? new AbortController().signal;
  let interval = options.intervalMs ?? 1_000;

  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw toAbortedError(options.signal);
    if (timeout?.aborted) throw pollTimeout(options.timeoutMs);
    let result: PollResult<T>;
    try {
      result = await check({ attempt, signal });
    } catch (error) {
      if (options.signal?.aborted) throw toAbortedError(options.signal);
      if (timeout?.aborted) throw pollTimeout(options.timeoutMs, error);
      throw error;
    }
    if (result.done) return result.value;
    const base = result.delayMs ?? interval;
    const delay = Math.max(0, base * (1 + jitter * (2 * random() - 1)));
    try {
      await sleep(delay, signal);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw pollTimeout(options.timeoutMs);
    }
    interval = Math.min(maxInterval, interval * multiplier);
  }
}

function pollTimeout(timeoutMs: number | undefined, cause?: unknown): TimeoutError {
  return new TimeoutError(`Polling gave up after ${timeoutMs} ms`, {
    timeoutMs: timeoutMs as number,
    cause,
  });
}
