import { TimeoutError, toAbortedError } from "./errors.js";

/**
 * Resolves after `ms` milliseconds; rejects with `AbortedError` as soon as `signal`
 * fires. Every sleep in tunekit goes through here so every wait is cancellable.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(toAbortedError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(toAbortedError(signal as AbortSignal));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A signal that fires when any of `signals` fires (undefined entries are ignored). */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}

/**
 * Races `promise` against `signal` and an optional timeout. The underlying work is not
 * stopped — this only stops *waiting* for it.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  options: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined; what?: string },
): Promise<T> {
  const { signal, timeoutMs } = options;
  if (!signal && timeoutMs === undefined) return promise;
  if (signal?.aborted) return Promise.reject(toAbortedError(signal));
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      cleanup();
      reject(toAbortedError(signal as AbortSignal));
    };
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        cleanup();
        reject(
          new TimeoutError(
            `Gave up waiting for ${options.what ?? "the operation"} after ${timeoutMs} ms`,
            {
              timeoutMs,
            },
          ),
        );
      }, timeoutMs);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error);
      },
    );
  });
}
