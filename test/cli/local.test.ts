import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runTunekit, startTunekit } from "./helpers.js";

const DEMO = "models/demo-counting";
const DATA = "examples/data/increment.jsonl";

describe("tunekit tune --backend local", () => {
  it("tunes the demo model, then generate, status and plot use the adapter directory", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "tunekit-cli-local-")), "run");
    const run = await runTunekit(
      [
        "tune",
        DATA,
        "--backend",
        "local",
        "--model",
        DEMO,
        "--out",
        out,
        "--epochs",
        "2",
        "--learning-rate",
        "0.001",
        "--batch-size",
        "8",
      ],
      { timeoutMs: 120_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/step \d+\/100 .*tok\/s/); // non-TTY progress lines with tokens/s
    expect(existsSync(join(out, "adapter_model.safetensors"))).toBe(true);

    const answer = await runTunekit(["generate", out, "41"]);
    expect(answer.code, answer.stderr).toBe(0);
    expect(answer.stdout.trim()).toBe("42");

    const status = await runTunekit(["--json", "status", out]);
    expect(JSON.parse(status.stdout)).toMatchObject({ state: "succeeded" });

    const plot = await runTunekit(["plot", out, "--out", join(out, "curve.svg")]);
    expect(plot.code, plot.stderr).toBe(0);
    expect(existsSync(join(out, "curve.svg"))).toBe(true);

    // The run's adapter, and the base it goes with, as llama.cpp GGUF files.
    const lora = join(out, "increment-lora.gguf");
    const exported = await runTunekit(["--json", "export", out, "--format", "gguf", "--out", lora]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ kind: "adapter", out: lora, tensors: 56 });
    const base = await runTunekit(["export", DEMO, "--out", join(out, "demo.gguf")]);
    expect(base.code, base.stderr).toBe(0);
    expect(base.stdout).toMatch(/wrote .*demo\.gguf: GGUF model, 38 tensors/);
  });

  it("takes a GGUF file as the base model: tune, generate, export the adapter for it", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "tunekit-cli-gguf-")), "run");
    const gguf = "test/fixtures/gguf/tiny-gemma3.gguf"; // random Gemma 3, SentencePiece vocab
    const run = await runTunekit(
      [
        "tune",
        "examples/data/increment-seed.jsonl",
        "--backend",
        "local",
        "--model",
        gguf,
        "--out",
        out,
        "--epochs",
        "60",
        "--learning-rate",
        "0.003",
        "--batch-size",
        "5",
      ],
      { timeoutMs: 120_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    // A seed example: the random model memorises them, it cannot generalise.
    const answer = await runTunekit(["generate", out, "-3"]);
    expect(answer.code, answer.stderr).toBe(0);
    expect(answer.stdout.trim()).toBe("-2");
    const lora = join(out, "lora.gguf");
    const exported = await runTunekit(["--json", "export", out, "--format", "gguf", "--out", lora]);
    expect(exported.code, exported.stderr).toBe(0);
    // 7 projections x 6 layers, A and B each.
    expect(JSON.parse(exported.stdout)).toMatchObject({ kind: "adapter", out: lora, tensors: 84 });
  });

  it("export refuses what it cannot convert, with exit codes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tunekit-cli-export-"));
    const notModel = await runTunekit(["export", dir, "--out", join(dir, "x.gguf")]);
    expect(notModel.code).toBe(3);
    expect(notModel.stderr).toMatch(/config\.json/);
    const badFormat = await runTunekit(["export", DEMO, "--format", "onnx"]);
    expect(badFormat.code).toBe(2);
    const misplaced = await runTunekit(["export", DEMO, "--base-model", DEMO]);
    expect(misplaced.code).toBe(3);
    expect(misplaced.stderr).toMatch(/--base-model applies to adapter exports/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("Ctrl-C cancels cleanly, exits 130 and leaves a loadable checkpoint", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "tunekit-cli-sigint-")), "run");
    const tune = startTunekit([
      "tune",
      DATA,
      "--backend",
      "local",
      "--model",
      DEMO,
      "--out",
      out,
      "--epochs",
      "20",
      "--batch-size",
      "4",
      "--learning-rate",
      "0.001",
    ]);
    await tune.waitFor(/step [1-9]\d*\/2000/, 60_000);
    tune.child.kill("SIGINT");
    const run = await tune.done;
    expect(run.code).toBe(130);
    expect(run.stderr).toMatch(/the last checkpoint is .*checkpoint-\d+/);
    const checkpoints = readdirSync(out).filter((name) => /^checkpoint-\d+$/.test(name));
    expect(checkpoints).toHaveLength(1);
    expect(readdirSync(out).some((name) => name.startsWith(".tmp-"))).toBe(false);

    const answer = await runTunekit(["generate", join(out, checkpoints[0] as string), "41"]);
    expect(answer.code, answer.stderr).toBe(0);
    expect(answer.stdout.trim()).not.toBe("");
  });
});

describe("the CLI, tried as a new user would", () => {
  it("a path-like name that does not exist is 'no such directory', not a key or hub error", async () => {
    const env = { GEMINI_API_KEY: "", GOOGLE_API_KEY: "", HF_HUB_OFFLINE: "" };
    for (const args of [
      ["status", "runs/no-such-run"],
      ["generate", "runs/no-such-run", "41"],
      ["resume", "runs/no-such-run"],
    ]) {
      const run = await runTunekit(args, { env });
      expect(run.code, `${args.join(" ")}: ${run.stderr}`).toBe(3);
      expect(run.stderr).toMatch(/no such directory runs\/no-such-run/);
      expect(run.stderr).not.toMatch(/API key/);
    }
    // A typo in a local model directory: the directory `models/` exists, so this is a path.
    const typo = await runTunekit(
      ["tune", DATA, "--backend", "local", "--model", "models/demo-countin"],
      { env: { HF_ENDPOINT: "http://127.0.0.1:9" } },
    );
    expect(typo.code, typo.stderr).toBe(3);
    expect(typo.stderr).toMatch(/no such directory .*models\/demo-countin/);
    expect(typo.stderr).toMatch(/did you mean models\/demo-counting/);
    expect(typo.stderr).not.toMatch(/fetch failed|ENOTFOUND|ECONNREFUSED|network/i);
  });

  it("--base-weights holds the base compactly while tuning, and a wrong value is named", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "tunekit-cli-base-weights-")), "run");
    const run = await runTunekit(
      [
        "tune",
        DATA,
        "--backend",
        "local",
        "--model",
        DEMO,
        "--base-weights",
        "q8_0",
        "--out",
        out,
        "--epochs",
        "2",
        "--learning-rate",
        "0.001",
        "--batch-size",
        "8",
      ],
      { timeoutMs: 120_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(join(out, "adapter_model.safetensors"))).toBe(true);

    const bad = await runTunekit(
      ["--json", "tune", DATA, "--backend", "local", "--model", DEMO, "--base-weights", "q3"],
      { timeoutMs: 60_000 },
    );
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({
      error: { code: "invalid_option", path: "--base-weights" },
    });
    expect(JSON.parse(bad.stdout).error.message).toBe(
      'Invalid --base-weights: must be "stored", "f32", "q8_0", "q4_k", "bf16", got "q3"',
    );

    const remote = await runTunekit(["tune", DATA, "--base-weights", "f32"], {
      env: { GEMINI_API_KEY: "k" },
    });
    expect(remote.code).toBe(3);
    expect(remote.stderr).toMatch(/--base-weights applies to --backend local only/);

    // eval: a base model takes it; a run directory (merged with its adapter) does not.
    const tiny = join(mkdtempSync(join(tmpdir(), "tunekit-cli-base-weights-eval-")), "d.jsonl");
    writeFileSync(tiny, `${readFileSync(DATA, "utf8").split("\n").slice(0, 2).join("\n")}\n`);
    const evalBase = await runTunekit(["--json", "eval", DEMO, tiny, "--base-weights", "q4_k"]);
    expect(evalBase.code, evalBase.stderr).toBe(0);
    expect(JSON.parse(evalBase.stdout)).toMatchObject({ examples: 2 });
    const evalRun = await runTunekit(["eval", out, tiny, "--base-weights", "f32"]);
    expect(evalRun.code).toBe(3);
    expect(evalRun.stderr).toMatch(/--base-weights applies to a local base model/);
  });

  it("--max-length 8 summarises the rows it cannot train instead of printing each", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "tunekit-cli-maxlen-")), "run");
    const run = await runTunekit(
      ["tune", DATA, "--backend", "local", "--model", DEMO, "--max-length", "8", "--out", out],
      { timeoutMs: 120_000 },
    );
    expect(run.code, run.stderr).toBe(3);
    const lines = run.stderr.trim().split("\n");
    expect(lines.length, run.stderr).toBeLessThanOrEqual(12);
    expect(run.stderr).toMatch(/… and \d+ more like these \(lines \d+–\d+\)/);
    expect(run.stderr).toMatch(/raise maxLength above it \(at least \d+/);
  });
});
