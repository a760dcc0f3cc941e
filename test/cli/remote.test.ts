import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeGeminiServer, startFakeGeminiServer } from "../../src/testing/index.js";
import { runTunekit, startTunekit } from "./helpers.js";

const DATA = "examples/data/increment.jsonl";
const KEY = "cli-test-key";
const TIMESTAMPED_STEP = /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\] step \d+\/50 \(\d+%\)/m;

let fake: FakeGeminiServer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  fake = await startFakeGeminiServer({ apiKey: KEY, tuningEnabled: true, stepsPerPoll: 10 });
  // The fake is chosen through the environment here and through --base-url in some tests.
  env = {
    GEMINI_API_KEY: KEY,
    GOOGLE_API_KEY: "",
    TUNEKIT_GEMINI_BASE_URL: fake.url,
    TUNEKIT_POLL_INTERVAL: "0.05",
  };
});

afterAll(async () => {
  await fake.close();
});

/** Starts a job without waiting and returns its tuned-model name. */
async function startJob(args: string[] = [], jobEnv = env): Promise<string> {
  const run = await runTunekit(["--json", "tune", DATA, "--no-wait", ...args], { env: jobEnv });
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { name: string }).name;
}

describe("tunekit tune --backend gemini", () => {
  it("shows timestamped progress lines when not on a TTY and finishes with advice", async () => {
    const run = await runTunekit(
      [
        "tune",
        DATA,
        "--backend",
        "gemini",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--display-name",
        "cli test",
        "--base-url",
        fake.url,
      ],
      { env: { ...env, TUNEKIT_GEMINI_BASE_URL: "" } },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(TIMESTAMPED_STEP);
    expect(run.stderr).toMatch(/step 50\/50 \(100%\) · epoch 2 · loss \d/);
    expect(run.stderr).toContain("state: succeeded");
    expect(run.stderr).not.toContain("\x1b["); // no redraws outside a terminal
    expect(run.stdout).toMatch(
      /^done: tunedModels\/cli-test-\w+ is ready \(50 steps, 2 epochs, final loss/m,
    );
    expect(run.stdout).toMatch(/^loss [▁▂▃▄▅▆▇█]+/m);
    expect(run.stdout).toMatch(/epoch/); // the plateau advice
    expect(run.stdout).toMatch(/tunekit generate tunedModels\/cli-test-\w+/);
  });

  it("prints one JSON document with --json and keeps progress off stdout", async () => {
    const run = await runTunekit(["--json", "tune", DATA, "--epochs", "2", "--batch-size", "16"], {
      env,
    });
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({
      state: "succeeded",
      name: expect.stringMatching(/^tunedModels\//),
      model: { state: "active", baseModel: "models/gemini-1.5-flash-001-tuning" },
      progress: { completedSteps: 50, totalSteps: 50 },
      advice: { kind: expect.any(String), message: expect.any(String) },
    });
    expect(result.progress.snapshots.length).toBeGreaterThan(0);
    expect(run.stderr).not.toMatch(/step \d+\/50/);
  });

  it("--no-wait returns at once with the commands to follow the job", async () => {
    const run = await runTunekit(["tune", DATA, "--no-wait", "--display-name", "later"], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^tunedModels\/later-\w+$/m);
    expect(run.stdout).toMatch(/watch: +tunekit watch tunedModels\/later-\w+/);
  });

  it("rejects local-only flags; --backend local resolves --model (offline: from the cache only)", async () => {
    const rank = await runTunekit(["tune", DATA, "--rank", "8"], { env });
    expect(rank.code).toBe(3);
    expect(rank.stderr).toContain("--rank applies to --backend local only");
    const local = await runTunekit(["tune", DATA, "--backend", "local", "--model", "some/model"], {
      env: { ...env, HF_HUB_OFFLINE: "1", HF_HOME: join(tmpdir(), "tunekit-cli-no-hf-cache") },
    });
    expect(local.code).not.toBe(0);
    expect(local.stderr).toMatch(
      /^error: some\/model@main is not in the hub cache .* offline mode is on/m,
    );
    expect(local.stderr).toMatch(/^hint: /m);
  });
});

describe("job and model commands", () => {
  let model: string;

  beforeAll(async () => {
    const run = await runTunekit(
      ["--json", "tune", DATA, "--epochs", "3", "--batch-size", "16", "--display-name", "managed"],
      { env },
    );
    expect(run.code, run.stderr).toBe(0);
    model = (JSON.parse(run.stdout) as { name: string }).name;
  });

  it("status shows the state, a loss sparkline and the advice; --json parses", async () => {
    const human = await runTunekit(["status", model], { env });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain(`${model}  succeeded`);
    expect(human.stdout).toMatch(/step 75\/75 \(100%\)/);
    expect(human.stdout).toMatch(/loss [▁▂▃▄▅▆▇█]{5,}/);
    const json = await runTunekit(["--json", "status", model], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({
      name: model,
      state: "succeeded",
      progress: { completedSteps: 75 },
      advice: { kind: expect.any(String) },
    });
  });

  it("list shows every tuned model as a table and as JSON", async () => {
    const human = await runTunekit(["list", "--page-size", "1"], { env });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^NAME +STATE +BASE MODEL/);
    expect(human.stdout).toContain(model);
    const json = await runTunekit(["--json", "list", "--page-size", "2"], { env });
    const { models } = JSON.parse(json.stdout) as { models: { name: string; state: string }[] };
    expect(models.find((m) => m.name === model)).toMatchObject({ state: "active" });
    expect(models.length).toBeGreaterThan(2); // pages were followed
  });

  it("get shows the model's details", async () => {
    const human = await runTunekit(["get", model], { env });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^display name: +managed$/m);
    expect(human.stdout).toMatch(/^hyperparameters: +epochCount 3, batchSize 16/m);
    const json = await runTunekit(["--json", "get", model], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({
      name: model,
      state: "active",
      displayName: "managed",
    });
  });

  it("generate answers from the tuned model, plain, streamed and as JSON", async () => {
    const plain = await runTunekit(["generate", model, "two hundred eighty two"], { env });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toBe("two hundred eighty three\n");
    const streamed = await runTunekit(
      ["generate", model, "401999", "--stream", "--temperature", "0"],
      { env },
    );
    expect(streamed.stdout).toBe("402000\n");
    const json = await runTunekit(
      ["--json", "generate", model, "401999", "--max-output-tokens", "16"],
      { env },
    );
    expect(JSON.parse(json.stdout)).toEqual({ model, input: "401999", output: "402000" });
  });

  it("cancel stops a running job; watch then reports it as cancelled (exit 5)", async () => {
    const job = await startJob();
    const run = await runTunekit(["--json", "cancel", job], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      name: job,
      state: "cancelled",
      cancelled: true,
    });
    const again = await runTunekit(["cancel", job], { env });
    expect(again.stdout).toContain("already ended (cancelled)");
    const watch = await runTunekit(["watch", job], { env });
    expect(watch.code).toBe(5);
    expect(watch.stderr).toMatch(/^error: .*cancelled/m);
  });

  it("delete asks for --yes when nobody can answer, then deletes", async () => {
    const job = await startJob();
    const refused = await runTunekit(["delete", job], { env });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain("pass --yes");
    const deleted = await runTunekit(["--json", "delete", job, "--yes"], { env });
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(JSON.parse(deleted.stdout)).toEqual({ name: job, deleted: true });
    const gone = await runTunekit(["get", job], { env });
    expect(gone.code).toBe(4);
  });

  it("plot draws a tuned model's loss curve through the remote hook", async () => {
    const out = `${process.env.TMPDIR ?? "/tmp"}/tunekit-remote-${process.pid}.svg`;
    const run = await runTunekit(["--json", "plot", model, "--out", out], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ out, points: 75 });
  });
});

describe("errors", () => {
  it("a wrong key exits 4 with one line and a hint, no stack trace, no key", async () => {
    const run = await runTunekit(["list"], { env: { ...env, GEMINI_API_KEY: "wrong-key-123" } });
    expect(run.code).toBe(4);
    const lines = run.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^error: .*(HTTP 403|API key)/);
    expect(lines[1]).toMatch(/^hint: The API key was rejected/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.stderr + run.stdout).not.toContain("wrong-key-123");
  });

  it("prints the stack trace with --verbose", async () => {
    const run = await runTunekit(["--verbose", "list"], {
      env: { ...env, GEMINI_API_KEY: "wrong-key-123" },
    });
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/\n\s+at /);
  });

  it("a missing key is an option error that names the variable", async () => {
    const run = await runTunekit(["list"], {
      env: { ...env, GEMINI_API_KEY: "", GOOGLE_API_KEY: "" },
    });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^error: No Gemini API key: set GEMINI_API_KEY/);
  });

  it("--json errors are one JSON document too", async () => {
    const run = await runTunekit(["--json", "get", "tunedModels/does-not-exist"], { env });
    expect(run.code).toBe(4);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: "not_found" } });
  });
});

describe("Ctrl-C during watch", () => {
  let slow: FakeGeminiServer;
  beforeAll(async () => {
    slow = await startFakeGeminiServer({ apiKey: KEY, tuningEnabled: true, stepsPerPoll: 1 });
  });
  afterAll(async () => {
    await slow.close();
  });

  it("stops watching, leaves the job running, prints how to re-attach and exits 130", async () => {
    const slowEnv = { ...env, TUNEKIT_GEMINI_BASE_URL: slow.url };
    const job = await startJob(["--epochs", "5", "--batch-size", "4"], slowEnv);
    const watch = startTunekit(["watch", job, "--poll-interval", "0.05"], { env: slowEnv });
    await watch.waitFor(/step \d+\/500/);
    watch.child.kill("SIGINT");
    const run = await watch.done;
    expect(run.code).toBe(130);
    expect(run.stderr).toContain(`stopped watching ${job}`);
    expect(run.stderr).toMatch(/^loss [▁▂▃▄▅▆▇█]+ .*\(so far\)$/m);
    expect(run.stderr).toContain(`tunekit watch ${job}`);
    expect(run.stderr).toContain(`tunekit cancel ${job}`);
    expect(run.stderr).not.toContain("Cancel the remote job too?"); // stdin is not a terminal
    const status = await runTunekit(["--json", "status", job], { env: slowEnv });
    expect(JSON.parse(status.stdout)).toMatchObject({ state: "running" });
  });
});

describe("tunekit fake-server as a child process", () => {
  it("serves a tune run from a second tunekit process", async () => {
    const server = startTunekit([
      "--json",
      "fake-server",
      "--api-key",
      "k2",
      "--steps-per-poll",
      "25",
    ]);
    try {
      await server.waitFor(/\}\s*$/);
      const { url } = JSON.parse(server.stdout) as { url: string };
      const run = await runTunekit(
        [
          "tune",
          DATA,
          "--base-url",
          url,
          "--poll-interval",
          "0.05",
          "--epochs",
          "2",
          "--batch-size",
          "16",
        ],
        { env: { GEMINI_API_KEY: "k2", TUNEKIT_GEMINI_BASE_URL: "", TUNEKIT_POLL_INTERVAL: "" } },
      );
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(TIMESTAMPED_STEP);
      expect(run.stdout).toMatch(/^done: tunedModels\//m);
    } finally {
      server.child.kill("SIGTERM");
    }
    const stopped = await server.done;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain("fake server stopped");
  });
});
