/**
 * `tunekit fake-server`: the fake Vertex AI service with `--vertex`, and flags that set the
 * fakes' behaviours (tunable bases, the v1beta cancel binding, step pacing, faults).
 */
import { describe, expect, it } from "vitest";
import { type RunningTunekit, runTunekit, startTunekit } from "./helpers.js";

async function serve(args: string[]): Promise<{ server: RunningTunekit; url: string }> {
  const server = startTunekit(["--json", "fake-server", ...args]);
  await server.waitFor(/\}\s*$/);
  return { server, url: (JSON.parse(server.stdout) as { url: string }).url };
}

async function stop(server: RunningTunekit): Promise<void> {
  server.child.kill("SIGTERM");
  const stopped = await server.done;
  expect(stopped.code).toBe(0);
  expect(stopped.stderr).toContain("fake server stopped");
}

describe("tunekit fake-server --vertex", () => {
  it("serves Vertex AI tuning + Cloud Storage to a tune run, through an injected 503", async () => {
    const { server, url } = await serve([
      "--vertex",
      "--access-token",
      "cli-token",
      "--steps-per-poll",
      "50",
      "--fault",
      "route=createTuningJob,status=503,times=1,retryAfter=0",
    ]);
    try {
      expect(JSON.parse(server.stdout)).toMatchObject({
        service: "vertex",
        accessToken: "cli-token",
      });
      const run = await runTunekit(
        ["--json", "tune", "examples/data/increment.jsonl", "--backend", "vertex", "--epochs", "1"],
        {
          env: {
            GOOGLE_CLOUD_PROJECT: "cli-project",
            GOOGLE_CLOUD_LOCATION: "us-central1",
            TUNEKIT_VERTEX_ACCESS_TOKEN: "cli-token",
            TUNEKIT_VERTEX_STAGING_URI: "gs://cli-bucket/tuning",
            TUNEKIT_VERTEX_BASE_URL: url,
            TUNEKIT_STORAGE_BASE_URL: url,
            TUNEKIT_POLL_INTERVAL: "0.05",
          },
        },
      );
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ state: "succeeded" });
      // The same server speaks v1beta1, as Google's SDKs default to.
      const list = await fetch(
        `${url}/v1beta1/projects/cli-project/locations/us-central1/tuningJobs`,
        {
          headers: { authorization: "Bearer cli-token" },
        },
      );
      expect(((await list.json()) as { tuningJobs: unknown[] }).tuningJobs).toHaveLength(1);
    } finally {
      await stop(server);
    }
  });
});

describe("tunekit fake-server behaviour flags", () => {
  it("--tunable-base, --v1beta-cancel, --steps-per-poll 0 and --fault shape the Gemini fake", async () => {
    const { server, url } = await serve([
      "--api-key",
      "k",
      "--tunable-base",
      "models/gemini-2.5-flash",
      "--v1beta-cancel",
      "--steps-per-poll",
      "0",
      "--fault",
      "route=listTunedModels,status=429,times=1",
    ]);
    const headers = { "x-goog-api-key": "k", "content-type": "application/json" };
    try {
      const base = (await (
        await fetch(`${url}/v1beta/models/gemini-2.5-flash`, { headers })
      ).json()) as {
        supportedGenerationMethods: string[];
      };
      expect(base.supportedGenerationMethods).toContain("createTunedModel");
      const examples = Array.from({ length: 20 }, (_, i) => ({
        textInput: `${i}`,
        output: `${i + 1}`,
      }));
      const created = (await (
        await fetch(`${url}/v1beta/tunedModels?tunedModelId=flags`, {
          method: "POST",
          headers,
          body: JSON.stringify({
            baseModel: "models/gemini-2.5-flash",
            tuningTask: { trainingData: { examples: { examples } } },
          }),
        })
      ).json()) as { name: string };
      // Manual pacing: polls do not move the job.
      const poll = (await (await fetch(`${url}/v1beta/${created.name}`, { headers })).json()) as {
        metadata: { completedSteps?: number };
      };
      expect(poll.metadata.completedSteps).toBeUndefined();
      const cancel = await fetch(`${url}/v1beta/${created.name}:cancel`, {
        method: "POST",
        headers,
        body: "{}",
      });
      expect(cancel.status).toBe(200);
      expect((await fetch(`${url}/v1beta/tunedModels`, { headers })).status).toBe(429);
      expect((await fetch(`${url}/v1beta/tunedModels`, { headers })).status).toBe(200);
    } finally {
      await stop(server);
    }
  });

  it("refuses a malformed --fault with exit 3, naming the known routes", async () => {
    const run = await runTunekit(["fake-server", "--fault", "route=createTuningJob,drop"]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('unknown route "createTuningJob"');
    expect(run.stderr).toContain("createTunedModel");
  });
});
