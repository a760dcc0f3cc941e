import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runTunekit } from "./helpers.js";

describe("tunekit demo (the quick start)", () => {
  it("tunes the shipped demo model offline and held-out answers improve", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "tunekit-demo-")), "run");
    const run = await runTunekit(["demo", "--out", out], { timeoutMs: 240_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("(the demo model shipped with tunekit)");
    expect(run.stdout).toMatch(/Before tuning: \d+\/120 held-out answers exactly right/);
    const match = /Held-out exact match: (\d+)% → (\d+)%/.exec(run.stdout);
    expect(match, run.stdout).not.toBeNull();
    const [before, after] = [Number(match?.[1]), Number(match?.[2])];
    expect(after).toBeGreaterThanOrEqual(90);
    expect(after).toBeGreaterThan(before + 50);
    // Per kind, carries included: every kind of the held-out set, each well learned.
    const kinds = [...run.stdout.matchAll(/^ {2}([a-z-]+) +(\d+)\/15 → (\d+)\/15$/gm)];
    expect(kinds.map((k) => k[1]).sort()).toEqual(
      ["commas", "digits", "negative", "words"].flatMap((k) => [k, `${k}-carry`]).sort(),
    );
    for (const [, , , right] of kinds) expect(Number(right)).toBeGreaterThanOrEqual(10);
    expect(existsSync(join(out, "adapter_model.safetensors"))).toBe(true);
    expect(existsSync(join(out, "loss.svg"))).toBe(true);
  }, 240_000);

  it("reports the scores as JSON with --json", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "tunekit-demo-json-")), "run");
    const run = await runTunekit(["--json", "demo", "--epochs", "1", "--show", "0", "--out", out], {
      timeoutMs: 240_000,
    });
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({
      trainingExamples: 400,
      heldOutExamples: 120,
      hyperparameters: { epochCount: 1, batchSize: 8, learningRate: 0.001 },
      adapter: out,
      lossCurve: join(out, "loss.svg"),
    });
    expect(result.before).toMatchObject({ total: 120 });
    expect(result.after).toMatchObject({
      total: 120,
      byKind: { "words-carry": { total: 15 }, "negative-carry": { total: 15 } },
    });
  }, 240_000);

  it("scores another held-out file (--held-out) and tunes with another seed (--seed)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tunekit-demo-heldout-"));
    const heldOut = join(dir, "other.jsonl");
    writeFileSync(
      heldOut,
      '{"text_input":"9","output":"10","kind":"digits-carry"}\n{"text_input":"-1","output":"0"}\n',
    );
    const run = await runTunekit(
      [
        "--json",
        "demo",
        "--epochs",
        "1",
        "--seed",
        "3",
        "--held-out",
        heldOut,
        "--out",
        join(dir, "run"),
      ],
      { timeoutMs: 240_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ heldOutExamples: 2, heldOutData: heldOut, seed: 3 });
    expect(Object.keys((result.after as { byKind: object }).byKind).sort()).toEqual([
      "digits-carry",
      "other",
    ]);
  }, 240_000);

  it("rejects a bad flag before loading anything", async () => {
    const run = await runTunekit(["demo", "--epochs", "0"]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("--epochs must be a whole number ≥ 1");
  });
});
