import { describe, expect, it } from "vitest";
import {
  AbortedError,
  BadRequestError,
  ConnectionError,
  RateLimitError,
  TimeoutError,
  UnavailableError,
} from "../../src/core/errors.js";
import { backoffDelay, parseRetryAfter, withRetry } from "../../src/core/retry.js";

const fast = { initialDelayMs: 1, maxDelayMs: 2 };

describe("withRetry", () => {
  it("retries retryable failures and returns the first success", async () => {
    let calls = 0;
    const result = await withRetry(async () => {
      calls++;
      if (calls < 3) throw new UnavailableError("busy", { httpStatus: 503 });
      return "ok";
    }, fast);
    expect(result).toBe("ok");
    expect(calls).toBe(3);
  });

  it("does not retry a 400", async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new BadRequestError("bad", { httpStatus: 400 });
      }, fast),
    ).rejects.toBeInstanceOf(BadRequestError);
    expect(calls).toBe(1);
  });

  it("gives up after maxRetries with the last error", async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new ConnectionError(`reset ${calls}`);
        },
        { ...fast, maxRetries: 2 },
      ),
    ).rejects.toThrow("reset 3");
    expect(calls).toBe(3);
  });

  it("waits at least the server's Retry-After", async () => {
    const delays: number[] = [];
    let calls = 0;
    await withRetry(
      async () => {
        if (calls++ === 0) throw new RateLimitError("429", { httpStatus: 429, retryAfterMs: 30 });
        return 1;
      },
      { ...fast, onRetry: ({ delayMs }) => delays.push(delayMs) },
    );
    expect(delays).toEqual([30]);
  });

  it("does not sleep through a Retry-After longer than its cap", async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new RateLimitError("429", { httpStatus: 429, retryAfterMs: 120_000 });
        },
        { ...fast, maxRetryAfterMs: 1_000 },
      ),
    ).rejects.toBeInstanceOf(RateLimitError);
    expect(calls).toBe(1);
  });

  it("turns a hung attempt into a retryable TimeoutError", async () => {
    let calls = 0;
    const result = await withRetry(
      ({ signal }) => {
        calls++;
        if (calls === 1)
          return new Promise((_, reject) =>
            signal.addEventListener("abort", () => reject(signal.reason)),
          );
        return Promise.resolve("second");
      },
      { ...fast, attemptTimeoutMs: 20 },
    );
    expect(result).toBe("second");
  });

  it("stops at the overall deadline", async () => {
    const error = await withRetry(
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      { ...fast, deadlineMs: 30, maxRetries: 100 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
  });

  it("aborts during backoff with AbortedError", async () => {
    const controller = new AbortController();
    const pending = withRetry(
      async () => {
        throw new UnavailableError("busy", { httpStatus: 503 });
      },
      { initialDelayMs: 10_000, maxDelayMs: 10_000, signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 10);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
  });
});

describe("backoffDelay", () => {
  it("grows exponentially with jitter and respects the cap", () => {
    expect(backoffDelay(1, { initialDelayMs: 100, random: () => 1 })).toBe(100);
    expect(backoffDelay(3, { initialDelayMs: 100, random: () => 1 })).toBe(400);
    expect(backoffDelay(3, { initialDelayMs: 100, random: () => 0 })).toBe(200);
    expect(backoffDelay(20, { initialDelayMs: 100, maxDelayMs: 1_000, random: () => 1 })).toBe(
      1_000,
    );
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("2")).toBe(2_000);
    expect(parseRetryAfter("0.5")).toBe(500);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:03 GMT", now)).toBe(3_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
