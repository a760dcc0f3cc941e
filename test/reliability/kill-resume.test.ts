/**
 * Kill-and-resume, CI-sized (the full-size run is bench/reliability/kill-resume.ts): local
 * training runs of the built package killed with SIGKILL at random moments. After every
 * kill the newest checkpoint must be complete and load; resuming must end with an adapter
 * identical, byte for byte, to the one an uninterrupted run writes.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runKillResume } from "../../bench/reliability/kill-resume-harness.js";

describe("kill -9 during local training (CI-sized)", () => {
  let workDir = "";
  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "tunekit-kill-resume-"));
  });
  afterAll(async () => {
    await rm(workDir, { recursive: true, force: true });
  });

  it("every newest checkpoint loads and every run resumes to the identical adapter", {
    timeout: 600_000,
  }, async () => {
    const report = await runKillResume({ minKills: 6, killsPerTrial: 2, seed: 3, workDir });
    expect(report.problems).toEqual([]);
    expect(report.kills).toBeGreaterThanOrEqual(6);
    expect(report.checkpointsLoaded).toBe(report.kills - report.killsBeforeFirstCheckpoint);
    expect(report.identical).toBe(report.trials);
  });
});
