/**
 * `tunekit eval`: a quick-start-like run (the demo model tuned briefly) scored before and after
 * tuning, as a table, as JSON and as a markdown report; and a fake-remote tuned model scored
 * through the same command. Needs the built CLI and native addon.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EvaluationReport } from "../../src/core/evaluate/index.js";
import { type FakeGeminiServer, startFakeGeminiServer } from "../../src/testing/index.js";
import { runTunekit } from "./helpers.js";

const DEMO = "models/demo-counting";
const DATA = "examples/data/increment.jsonl";
const HELD_OUT = "examples/data/increment-heldout.jsonl";

describe("tunekit eval on a local run", () => {
  const dir = mkdtempSync(join(tmpdir(), "tunekit-cli-eval-"));
  const run = join(dir, "run");
  // 48 held-out examples keep the test to seconds; a `kind` field to slice by.
  const heldOut = join(dir, "heldout.jsonl");

  beforeAll(async () => {
    const lines = readFileSync(HELD_OUT, "utf8").trim().split("\n").slice(0, 48);
    writeFileSync(
      heldOut,
      lines
        .map((line) => {
          const record = JSON.parse(line) as { text_input: string };
          const kind = /[a-z]/i.test(record.text_input)
            ? "words"
            : record.text_input.includes(",")
              ? "separators"
              : "digits";
          return JSON.stringify({ ...record, kind });
        })
        .join("\n"),
    );
    const tuned = await runTunekit(
      [
        "tune",
        DATA,
        "--backend",
        "local",
        "--model",
        DEMO,
        "--out",
        run,
        "--epochs",
        "2",
        "--learning-rate",
        "0.001",
        "--batch-size",
        "8",
      ],
      { timeoutMs: 180_000 },
    );
    expect(tuned.code, tuned.stderr).toBe(0);
  }, 200_000);

  it("tune wrote the loss curve and TensorBoard events into the run", () => {
    expect(readFileSync(join(run, "loss.svg"), "utf8")).toMatch(/^<svg/);
    expect(readdirSync(run).some((f) => f.startsWith("events.out.tfevents."))).toBe(true);
  });

  it("prints a before/after table, slices and the worst answers", async () => {
    const report = join(dir, "report.md");
    const result = await runTunekit(
      [
        "eval",
        run,
        heldOut,
        "--baseline",
        DEMO,
        "--group-by",
        "kind",
        "--max-output-tokens",
        "16",
        "--report",
        report,
      ],
      { timeoutMs: 120_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`baseline: ${DEMO}`);
    expect(result.stdout).toMatch(/^\s+baseline\s+model$/m);
    expect(result.stdout).toMatch(/^exactMatch\s+\d+\.\d%\s+\d+\.\d%$/m);
    expect(result.stdout).toMatch(/^perplexity\s+[\d.]+\s+[\d.]+$/m);
    expect(result.stdout).toMatch(/^digits\s+\d+\s+\d+\.\d% → \d+\.\d%/m);
    const markdown = readFileSync(report, "utf8");
    expect(markdown).toMatch(/^# Evaluation of /);
    expect(markdown).toMatch(/\| metric \| baseline: models\/demo-counting \| .* \|/);
    expect(markdown).toMatch(/## Worst 10 examples/);
    expect(markdown).toContain("| line ");
  }, 130_000);

  it("--json parses, with both reports, and tuning helped", async () => {
    const result = await runTunekit(
      ["--json", "eval", run, heldOut, "--baseline", DEMO, "--max-output-tokens", "16"],
      { timeoutMs: 120_000 },
    );
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as {
      examples: number;
      baseline: EvaluationReport;
      model: EvaluationReport;
    };
    expect(parsed.examples).toBe(48);
    expect(parsed.model.results).toHaveLength(48);
    const before = parsed.baseline.metrics;
    const after = parsed.model.metrics;
    expect(after.exactMatch as number).toBeGreaterThan(before.exactMatch as number);
    expect(after.loss as number).toBeLessThan(before.loss as number);
  }, 130_000);

  it("names a bad flag and a missing model with exit code 3", async () => {
    const bad = await runTunekit(["eval", run, heldOut, "--concurrency", "0"]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/--concurrency must be a whole number ≥ 1/);
    const missing = await runTunekit(["eval", join(dir, "nope"), heldOut]);
    expect(missing.code).toBe(3);
    // A run without its adapter yet (cancelled, still going) is named as such.
    const unfinished = join(dir, "unfinished");
    mkdirSync(unfinished);
    writeFileSync(join(unfinished, "tunekit-run.json"), "{}");
    const early = await runTunekit(["eval", unfinished, heldOut]);
    expect(early.code).toBe(3);
    expect(early.stderr).toMatch(/has not finished: it has no adapter yet/);
  });
});

describe("tunekit eval on a fake-remote tuned model", () => {
  const KEY = "cli-eval-key";
  let fake: FakeGeminiServer;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    fake = await startFakeGeminiServer({ apiKey: KEY, tuningEnabled: true, stepsPerPoll: 50 });
    env = { GEMINI_API_KEY: KEY, GOOGLE_API_KEY: "", TUNEKIT_GEMINI_BASE_URL: fake.url };
  });
  afterAll(() => fake.close());

  it("scores it through the same command, with no loss for a remote model", async () => {
    const tuned = await runTunekit(
      ["--json", "tune", DATA, "--epochs", "1", "--batch-size", "16", "--poll-interval", "0.05"],
      { env },
    );
    expect(tuned.code, tuned.stderr).toBe(0);
    const name = (JSON.parse(tuned.stdout) as { name: string }).name;
    // The fake answers inputs it was trained on exactly: the first lines of the training data.
    const dir = mkdtempSync(join(tmpdir(), "tunekit-cli-eval-remote-"));
    const data = join(dir, "seen.jsonl");
    writeFileSync(data, readFileSync(DATA, "utf8").split("\n").slice(0, 6).join("\n"));
    const result = await runTunekit(["--json", "eval", name, data, "--concurrency", "3"], { env });
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as { model: EvaluationReport };
    expect(parsed.model.model).toBe(name);
    expect(parsed.model.metrics).toEqual({ exactMatch: 1, normalizedMatch: 1, contains: 1 });
    expect(existsSync(join(dir, "report.md"))).toBe(false);
  });
});
