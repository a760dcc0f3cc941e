/**
 * Remote tuning under injected faults (CI size; `bench/reliability/remote.ts` runs the full
 * size): creates and polls hit by lost answers, slow services acting after the client's
 * timeout, 429/503 with Retry-After and connection resets never make a second model or job and
 * never attach to one this call did not make; every failure is a typed error.
 */
import { describe, expect, it } from "vitest";
import { CI_OPTIONS, runGeminiTrials, runVertexTrials, summarize } from "./remote-harness.js";

describe("remote create/poll faults (CI size)", () => {
  it("Gemini: 0 duplicates, 0 false attaches, 0 untyped errors", async () => {
    const summary = summarize(await runGeminiTrials(45, CI_OPTIONS));
    expect(summary.faultsHit).toBeGreaterThanOrEqual(60);
    expect(summary.duplicates).toBe(0);
    expect(summary.falseAttaches).toBe(0);
    expect(summary.untypedErrors).toBe(0);
    expect(summary.preexistingAttached).toBe(0);
    // Faults of every timing were exercised, and most trials still succeeded.
    for (const kind of ["lost", "slow", "429", "503", "reset"]) {
      expect(summary.faultsByKind[`create:${kind}`], kind).toBeGreaterThan(0);
    }
    expect(summary.outcomes.succeeded).toBeGreaterThan(summary.trials / 2);
  }, 120_000);

  it("Vertex: 0 duplicates, 0 false attaches, 0 untyped errors", async () => {
    const summary = summarize(await runVertexTrials(30, CI_OPTIONS));
    expect(summary.faultsHit).toBeGreaterThanOrEqual(40);
    expect(summary.duplicates).toBe(0);
    expect(summary.falseAttaches).toBe(0);
    expect(summary.untypedErrors).toBe(0);
    for (const kind of ["lost", "slow", "429", "503", "reset"]) {
      expect(summary.faultsByKind[`create:${kind}`], kind).toBeGreaterThan(0);
    }
    expect(summary.outcomes.succeeded).toBeGreaterThan(summary.trials / 3);
  }, 120_000);
});
