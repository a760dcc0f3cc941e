import { describe, expect, it } from "vitest";
import { AbortedError, TimeoutError } from "../../src/core/errors.js";
import { poll } from "../../src/core/poll.js";

describe("poll", () => {
  it("checks until done and returns the value", async () => {
    let checks = 0;
    const value = await poll(
      async () => (++checks === 3 ? { done: true, value: "finished" } : { done: false }),
      { intervalMs: 1 },
    );
    expect(value).toBe("finished");
    expect(checks).toBe(3);
  });

  it("grows the interval up to the cap and honours a per-check delay", async () => {
    const times: number[] = [];
    await poll(
      async () => {
        times.push(Date.now());
        return times.length === 4 ? { done: true, value: 0 } : { done: false };
      },
      { intervalMs: 10, multiplier: 2, maxIntervalMs: 20, jitter: 0 },
    );
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeLessThan(200);
  });

  it("rejects with TimeoutError past its deadline", async () => {
    await expect(
      poll(async () => ({ done: false }), { intervalMs: 5, timeoutMs: 30 }),
    ).rejects.toBeInstanceOf(TimeoutError);
  });

  it("rejects with AbortedError the moment its signal fires, even mid-sleep", async () => {
    const controller = new AbortController();
    const started = Date.now();
    const pending = poll(async () => ({ done: false }), {
      intervalMs: 60_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 10);
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("propagates an error thrown by the check", async () => {
    await expect(
      poll(async () => {
        throw new Error("server says no");
      }),
    ).rejects.toThrow("server says no");
  });
});
