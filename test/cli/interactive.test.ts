import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/program.js";
import { Dataset } from "../../src/core/dataset/index.js";
import { GeminiTuner } from "../../src/gemini/index.js";
import { type FakeGeminiServer, startFakeGeminiServer } from "../../src/testing/index.js";

// In-process runs with a pretend terminal on stdin: the parts a spawned process cannot show
// (the y/N question after Ctrl-C, deletion after "y").

const KEY = "interactive-key";
let fake: FakeGeminiServer;

beforeAll(async () => {
  fake = await startFakeGeminiServer({ apiKey: KEY, tuningEnabled: true, stepsPerPoll: 1 });
});
afterAll(async () => {
  await fake.close();
});

function terminal() {
  const stdin = Object.assign(new PassThrough(), { isTTY: true });
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  stderr.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const interrupt = new AbortController();
  const io = {
    stdin,
    stdout,
    stderr,
    env: { GEMINI_API_KEY: KEY, TUNEKIT_GEMINI_BASE_URL: fake.url, TUNEKIT_POLL_INTERVAL: "0.05" },
    interrupt: interrupt.signal,
  };
  const until = async (pattern: RegExp) => {
    for (let i = 0; i < 400 && !pattern.test(err); i++) await new Promise((r) => setTimeout(r, 25));
    if (!pattern.test(err)) throw new Error(`no ${pattern} in:\n${err}`);
  };
  return { io, interrupt, until, stdout: () => out, stderr: () => err };
}

async function startJob(): Promise<string> {
  const tuner = new GeminiTuner({ apiKey: KEY, baseUrl: fake.url });
  const job = await tuner.tune({
    baseModel: "models/gemini-1.5-flash-001-tuning",
    dataset: await Dataset.load("examples/data/increment.jsonl"),
    hyperparameters: { epochCount: 5, batchSize: 4 },
  });
  return job.tunedModelName;
}

describe("Ctrl-C during watch on a terminal", () => {
  it('asks "Cancel the remote job too?" and cancels on y', async () => {
    const name = await startJob();
    const t = terminal();
    const code = runCli(["watch", name], t.io);
    await t.until(/step \d+\/500/);
    t.interrupt.abort("SIGINT");
    await t.until(/Cancel the remote job too\? \[y\/N\]/);
    t.io.stdin.write("y\n");
    expect(await code).toBe(130);
    expect(t.stderr()).toContain(`cancelled ${name}`);
    const status = terminal();
    await runCli(["--json", "status", name], status.io);
    expect(JSON.parse(status.stdout())).toMatchObject({ state: "cancelled" });
  });

  it("keeps the job running on N (Enter) and prints how to re-attach", async () => {
    const name = await startJob();
    const t = terminal();
    const code = runCli(["watch", name], t.io);
    await t.until(/step \d+\/500/);
    t.interrupt.abort("SIGINT");
    await t.until(/Cancel the remote job too\?/);
    t.io.stdin.write("\n");
    expect(await code).toBe(130);
    expect(t.stderr()).toContain(`re-attach: tunekit watch ${name}`);
    const status = terminal();
    await runCli(["--json", "status", name], status.io);
    expect(JSON.parse(status.stdout())).toMatchObject({ state: "running" });
  });
});

describe("delete on a terminal", () => {
  it("deletes after y and keeps the model after anything else", async () => {
    const name = await startJob();
    const no = terminal();
    const kept = runCli(["delete", name], no.io);
    await no.until(/Delete .* \[y\/N\]/);
    no.io.stdin.write("n\n");
    expect(await kept).toBe(0);
    expect(no.stderr()).toContain("not deleted");
    const yes = terminal();
    const gone = runCli(["delete", name], yes.io);
    await yes.until(/Delete .* \[y\/N\]/);
    yes.io.stdin.write("y\n");
    expect(await gone).toBe(0);
    expect(yes.stdout()).toContain(`deleted ${name}`);
  });
});

describe("generate -", () => {
  it("reads the input from stdin", async () => {
    const tuner = new GeminiTuner({
      apiKey: KEY,
      baseUrl: fake.url,
      pollIntervalMs: 10,
      maxPollIntervalMs: 10,
    });
    const job = await tuner.tune({
      baseModel: "models/gemini-1.5-flash-001-tuning",
      dataset: await Dataset.load("examples/data/increment.jsonl"),
      hyperparameters: { epochCount: 1, batchSize: 100 },
    });
    const model = await job.wait();
    const t = terminal();
    t.io.stdin.end("401999\n");
    expect(await runCli(["generate", model.name, "-"], t.io)).toBe(0);
    expect(t.stdout()).toBe("402000\n");
  });
});
