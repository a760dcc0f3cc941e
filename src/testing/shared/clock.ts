/**
 * The fake service's clock. It never reads the wall clock: time moves only when a test calls
 * `advance` (or the service advances it on a poll in auto mode), so every timestamp the fake
 * writes is reproducible.
 */

/** Default start of fake time: 2026-01-01T00:00:00.000Z. */
export const DEFAULT_START_TIME = Date.UTC(2026, 0, 1);

/** A manual clock in milliseconds since the epoch. */
export class FakeClock {
  #now: number;
  readonly #listeners = new Set<(elapsedMs: number) => void>();

  constructor(startTime: number | Date = DEFAULT_START_TIME) {
    this.#now = typeof startTime === "number" ? startTime : startTime.getTime();
  }

  /** Current fake time, ms since the epoch. */
  now(): number {
    return this.#now;
  }

  /** Current fake time as an RFC 3339 string (`2026-01-01T00:00:05.000Z`). */
  iso(): string {
    return new Date(this.#now).toISOString();
  }

  /** Move time forward by `ms` (≥ 0) and tell the listeners (the service moves running jobs). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance(ms) needs ms ≥ 0, got ${ms}`);
    this.#now += ms;
    for (const listener of this.#listeners) listener(ms);
  }

  /** @internal Called with the elapsed milliseconds after each `advance`. */
  onAdvance(listener: (elapsedMs: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal Move time without telling listeners (auto mode moves one job itself). */
  skip(ms: number): void {
    this.#now += ms;
  }
}
