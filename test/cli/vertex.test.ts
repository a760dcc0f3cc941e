import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeVertexServer, startFakeVertexServer } from "../../src/testing/index.js";
import { runTunekit } from "./helpers.js";

const TOKEN = "cli-vertex-token";
let fake: FakeVertexServer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  fake = await startFakeVertexServer({ accessToken: TOKEN, stepsPerPoll: 50 });
  env = {
    GOOGLE_CLOUD_PROJECT: "cli-project",
    GOOGLE_CLOUD_LOCATION: "us-central1",
    TUNEKIT_VERTEX_ACCESS_TOKEN: TOKEN,
    TUNEKIT_VERTEX_STAGING_URI: "gs://cli-bucket/tuning",
    TUNEKIT_VERTEX_BASE_URL: fake.url,
    TUNEKIT_STORAGE_BASE_URL: fake.url,
    TUNEKIT_POLL_INTERVAL: "0.05",
  };
});

afterAll(async () => {
  await fake.close();
});

describe("tunekit with --backend vertex", () => {
  it("stages the dataset, tunes on the fake Vertex AI service and reports the job", async () => {
    const run = await runTunekit(
      ["--json", "tune", "examples/data/increment.jsonl", "--backend", "vertex", "--epochs", "2"],
      { env },
    );
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { name: string; state: string };
    expect(result.state).toBe("succeeded");
    expect(result.name).toMatch(/^projects\/cli-project\/locations\/us-central1\/tuningJobs\//);

    const status = await runTunekit(["--json", "status", result.name], { env });
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ state: "succeeded" });
  });

  it("refuses batchSize before any request, saying what to use instead", async () => {
    const before = fake.service.requests.length;
    const run = await runTunekit(
      ["tune", "examples/data/increment.jsonl", "--backend", "vertex", "--batch-size", "8"],
      { env },
    );
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/batchSize/);
    expect(fake.service.requests.length).toBe(before);
  });
});
