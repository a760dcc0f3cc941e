import pRetry, { type RetryContext, AbortError as StopRetrying } from "p-retry";
import { anySignal, sleep } from "./abort.js";
import {
  AbortedError,
  ApiError,
  ConnectionError,
  TimeoutError,
  TunekitError,
  toAbortedError,
} from "./errors.js";

/** How a call is retried. Every field has a sensible default. */
export interface RetryOptions {
  /** Retries after the first attempt (default 2, so at most 3 attempts). */
  maxRetries?: number;
  /** First backoff delay before jitter (default 500 ms). */
  initialDelayMs?: number;
  /** Cap on a single backoff delay (default 8 s). */
  maxDelayMs?: number;
  /** Cap on a server's `Retry-After` (default 60 s); longer requests are not honoured — the error is thrown. */
  maxRetryAfterMs?: number;
  /** Time limit of one attempt; an attempt past it fails with a retryable `TimeoutError`. */
  attemptTimeoutMs?: number;
  /** Time limit of all attempts and sleeps together. */
  deadlineMs?: number;
  /** Stops everything at once, with `AbortedError`. */
  signal?: AbortSignal | undefined;
  /** Decides whether an error is worth another attempt (default: {@link isRetryableError}). */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Told before each sleep, e.g. to log "retrying in 2 s". */
  onRetry?: (info: { error: unknown; attempt: number; delayMs: number }) => void;
  /** Source of randomness for jitter (tests pass a fixed one). */
  random?: () => number;
}

/** Context passed to each attempt. */
export interface AttemptContext {
  /** 1 for the first attempt. */
  attempt: number;
  /** Fires when the caller aborts or the attempt times out: pass it to `fetch`. */
  signal: AbortSignal;
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/**
 * The default retry rule: connection failures, per-attempt time-outs and HTTP
 * 408, 429, 500, 502, 503, 504.
 */
export function isRetryableError(error: unknown): boolean {
  if (error instanceof ConnectionError) return true;
  if (error instanceof TimeoutError) return true;
  if (error instanceof ApiError) return RETRYABLE_STATUS.has(error.httpStatus);
  return false;
}

/** Full-jitter exponential backoff: a random delay in [0.5, 1] × min(cap, initial × 2^(n-1)). */
export function backoffDelay(
  attempt: number,
  options: { initialDelayMs?: number; maxDelayMs?: number; random?: () => number } = {},
): number {
  const initial = options.initialDelayMs ?? 500;
  const cap = options.maxDelayMs ?? 8_000;
  const random = options.random ?? Math.random;
  const base = Math.min(cap, initial * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.5 + 0.5 * random()));
}

/**
 * Runs `fn` until it succeeds, a non-retryable error occurs, retries run out or the
 * deadline passes. The loop is p-retry's; around it tunekit keeps its own per-attempt
 * timeout, overall deadline, caller abort and delays: a server's `Retry-After` (carried by
 * `ApiError.retryAfterMs`) wins over jittered exponential backoff, and every wait ends at once
 * when the caller aborts or the deadline passes.
 *
 * @example
 * ```ts
 * const body = await withRetry(({ signal }) => fetchJson(url, { signal }), { maxRetries: 3 });
 * ```
 */
export async function withRetry<T>(
  fn: (context: AttemptContext) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const maxRetries = options.maxRetries ?? 2;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const shouldRetry = options.shouldRetry ?? isRetryableError;
  const started = Date.now();
  const deadline = options.deadlineMs === undefined ? undefined : started + options.deadlineMs;
  const outer = anySignal(
    options.signal,
    options.deadlineMs === undefined ? undefined : AbortSignal.timeout(options.deadlineMs),
  );
  // p-retry rethrows the error wrapped in its AbortError as is and stops retrying.
  const stop = (error: unknown): never => {
    throw new StopRetrying(error instanceof Error ? error : new Error(String(error)));
  };

  const attemptOnce = async (attempt: number): Promise<T> => {
    if (options.signal?.aborted) stop(toAbortedError(options.signal));
    if (outer?.aborted) stop(deadlineError(options.deadlineMs));
    const attemptTimeout =
      options.attemptTimeoutMs === undefined
        ? undefined
        : AbortSignal.timeout(options.attemptTimeoutMs);
    const signal = anySignal(outer, attemptTimeout) ?? new AbortController().signal;
    let error: unknown;
    try {
      return await fn({ attempt, signal });
    } catch (caught) {
      error = caught;
    }
    // Classify why the attempt ended before deciding anything else.
    if (options.signal?.aborted) stop(toAbortedError(options.signal));
    if (outer?.aborted) stop(deadlineError(options.deadlineMs, error));
    if (attemptTimeout?.aborted && !(error instanceof TunekitError && error.code !== "aborted")) {
      error = new TimeoutError(
        `Attempt ${attempt} timed out after ${options.attemptTimeoutMs} ms`,
        {
          timeoutMs: options.attemptTimeoutMs as number,
          cause: error,
        },
      );
    }
    if (attempt > maxRetries || !shouldRetry(error, attempt)) stop(error);
    throw error;
  };

  /** Runs between a failed attempt and the next: decides the delay and waits it out. */
  const waitBeforeRetry = async ({ error, attemptNumber }: RetryContext): Promise<boolean> => {
    let delayMs = backoffDelay(attemptNumber, options);
    const retryAfter = error instanceof ApiError ? error.retryAfterMs : undefined;
    if (retryAfter !== undefined) {
      if (retryAfter > maxRetryAfterMs) throw error; // the server wants longer than we will wait
      delayMs = Math.max(delayMs, retryAfter);
    }
    if (deadline !== undefined && Date.now() + delayMs > deadline) throw error;
    options.onRetry?.({ error, attempt: attemptNumber, delayMs });
    try {
      await sleep(delayMs, outer);
    } catch (sleepError) {
      if (options.signal?.aborted) throw sleepError;
      if (sleepError instanceof AbortedError) throw deadlineError(options.deadlineMs, error);
      throw sleepError;
    }
    return true;
  };

  return pRetry(attemptOnce, {
    retries: maxRetries,
    // The delay is tunekit's (Retry-After, jitter, abortable), taken in `shouldRetry`.
    minTimeout: 0,
    factor: 1,
    shouldRetry: waitBeforeRetry,
  });
}

function deadlineError(deadlineMs: number | undefined, cause?: unknown): TimeoutError {
  return new TimeoutError(`Gave up after the overall deadline of ${deadlineMs} ms`, {
    timeoutMs: deadlineMs as number,
    cause,
  });
}

/**
 * Parses an HTTP `Retry-After` header (delta-seconds or an HTTP date) into milliseconds.
 * Returns undefined for a missing or unparsable value.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (value == null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
