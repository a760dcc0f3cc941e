/** VertexTuner without a service: option checks (before any I/O), names, state mapping, auth. */
import { inspect } from "node:util";
import { describe, expect, it, vi } from "vitest";
import { InvalidOptionError, UnsupportedOptionError } from "../../src/core/errors.js";
import { AdcAuth } from "../../src/remote/adc.js";
import { Redactor } from "../../src/remote/redact.js";
import { progressFromJob, toDataStats, toJobState, toModelInfo } from "../../src/vertex/convert.js";
import { assertLabels, parseGcsUri, parseJobName, vertexBaseUrl } from "../../src/vertex/names.js";
import { type VertexTuneRequest, VertexTuner } from "../../src/vertex/tuner.js";
import { BASE_MODEL, INSTRUCTION, incrementDataset, testTuner } from "./helpers.js";

/** A fetch that fails the test if anything is sent. */
function noNetwork() {
  return vi.fn(async (): Promise<Response> => {
    throw new Error("no request may be sent");
  });
}

describe("options Vertex cannot honour fail before any I/O", () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["batchSize", { epochCount: 3, batchSize: 8 }, /batch size/],
    ["learningRate", { learningRate: 2e-4 }, /learningRateMultiplier/],
  ];
  it.each(cases)(
    "%s → UnsupportedOptionError naming the alternative",
    async (_, hyperparameters, message) => {
      const fetch = noNetwork();
      const tuner = testTuner({ fetch });
      const error = await tuner
        .tune({ baseModel: BASE_MODEL, dataset: incrementDataset(), hyperparameters })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnsupportedOptionError);
      expect((error as UnsupportedOptionError).backend).toBe("vertex");
      expect((error as Error).message).toMatch(message);
      expect(fetch).not.toHaveBeenCalled();
    },
  );

  it("also: both learning-rate fields, unknown vertex options, bad labels, bad URIs, missing staging", async () => {
    const fetch = noNetwork();
    const tuner = testTuner({ fetch });
    const base = { baseModel: BASE_MODEL, dataset: incrementDataset() };
    const bad: VertexTuneRequest[] = [
      { ...base, hyperparameters: { learningRate: 1, learningRateMultiplier: 1 } },
      { ...base, vertex: { tunedModelId: "x" } as never },
      { ...base, vertex: { labels: { tunekit_request: "mine" } } },
      { ...base, vertex: { labels: { ok: "NOT LOWER" } } },
      { ...base, vertex: { stagingUri: "s3://bucket/x" } },
      { ...base, vertex: { trainingDatasetUri: "/local/file.jsonl" } },
      { ...base, displayName: "x".repeat(129) },
      { baseModel: "", dataset: incrementDataset() },
      {
        ...base,
        validation: incrementDataset(3),
        vertex: { validationDatasetUri: "gs://b/v.jsonl" },
      },
    ];
    for (const request of bad) {
      await expect(tuner.tune(request), JSON.stringify(request)).rejects.toBeInstanceOf(
        InvalidOptionError,
      );
    }
    await expect(testTuner({ fetch, stagingUri: undefined as never }).tune(base)).rejects.toThrow(
      /staging location/,
    );
    expect(fetch).not.toHaveBeenCalled();
  });

  it("an aborted signal stops tune() before any request", async () => {
    const fetch = noNetwork();
    await expect(
      testTuner({ fetch }).tune({
        baseModel: BASE_MODEL,
        dataset: incrementDataset(),
        signal: AbortSignal.abort(),
      }),
    ).rejects.toMatchObject({ code: "aborted" });
    expect(fetch).not.toHaveBeenCalled();
  });

  it("deleteModel is not offered (no request)", async () => {
    const fetch = noNetwork();
    await expect(testTuner({ fetch }).deleteModel("123")).rejects.toBeInstanceOf(
      UnsupportedOptionError,
    );
    expect(fetch).not.toHaveBeenCalled();
  });
});

describe("the create body", () => {
  it("takes a Gemini API model name as the same Vertex model, and sends epochCount as an int64 string", async () => {
    const bodies: Record<string, unknown>[] = [];
    const tuner = testTuner({
      fetch: async (url, init) => {
        if (url.includes("/upload/")) {
          return new Response(JSON.stringify({ name: "x", bucket: "b" }), { status: 200 });
        }
        bodies.push(JSON.parse(String(init.body)) as Record<string, unknown>);
        return new Response(
          JSON.stringify({
            name: "projects/p/locations/us-central1/tuningJobs/1",
            state: "JOB_STATE_PENDING",
          }),
          { status: 200 },
        );
      },
    });
    const job = await tuner.tune({
      baseModel: "models/gemini-2.5-flash",
      dataset: incrementDataset(),
      hyperparameters: { epochCount: 4 },
      vertex: {
        adapterSize: 16,
        exportLastCheckpointOnly: true,
        serviceAccount: "sa@p.iam.gserviceaccount.com",
        kmsKeyName: "k",
      },
    });
    job.detach();
    expect(bodies[0]).toMatchObject({
      baseModel: "gemini-2.5-flash",
      supervisedTuningSpec: {
        hyperParameters: { epochCount: "4", adapterSize: "ADAPTER_SIZE_SIXTEEN" },
        exportLastCheckpointOnly: true,
      },
      serviceAccount: "sa@p.iam.gserviceaccount.com",
      encryptionSpec: { kmsKeyName: "k" },
    });
  });
});

describe("construction", () => {
  it("needs a project; reads GOOGLE_CLOUD_PROJECT / GOOGLE_CLOUD_LOCATION", () => {
    expect(() => new VertexTuner({ accessToken: "t", env: {} })).toThrow(InvalidOptionError);
    const tuner = new VertexTuner({
      accessToken: "t",
      env: { GOOGLE_CLOUD_PROJECT: "p1", GOOGLE_CLOUD_LOCATION: "europe-west4" },
    });
    expect(tuner.parent).toBe("projects/p1/locations/europe-west4");
    expect(tuner.baseUrl).toBe("https://europe-west4-aiplatform.googleapis.com");
  });

  it("uses the regional host, or aiplatform.googleapis.com for global", () => {
    expect(vertexBaseUrl("us-central1")).toBe("https://us-central1-aiplatform.googleapis.com");
    expect(vertexBaseUrl("global")).toBe("https://aiplatform.googleapis.com");
    expect(new VertexTuner({ project: "p", location: "global", accessToken: "t" }).baseUrl).toBe(
      "https://aiplatform.googleapis.com",
    );
    expect(() => vertexBaseUrl("us central")).toThrow(InvalidOptionError);
  });

  it("rejects bad numbers and a bad staging URI", () => {
    expect(() => testTuner({ pollIntervalMs: 0 })).toThrow(InvalidOptionError);
    expect(() => testTuner({ maxRetries: -1 })).toThrow(InvalidOptionError);
    expect(() => testTuner({ stagingUri: "bucket/prefix" })).toThrow(InvalidOptionError);
  });
});

describe("Application Default Credentials", () => {
  it("are used only without an access token, through the injected or lazily loaded GoogleAuth", async () => {
    const googleAuth = { getAccessToken: vi.fn(async () => "ya29.adc-token-abcdef") };
    const auth = new AdcAuth({ googleAuth, quotaProject: "quota-p" });
    const redactor = new Redactor();
    auth.registerSecrets(redactor);
    await expect(auth.headers()).resolves.toEqual({
      authorization: "Bearer ya29.adc-token-abcdef",
      "x-goog-user-project": "quota-p",
    });
    expect(redactor.text("token ya29.adc-token-abcdef")).toBe("token [REDACTED]");
    expect(inspect(auth)).not.toContain("adc-token");

    const seen: string[] = [];
    const tuner = testTuner({
      accessToken: undefined as never,
      googleAuth,
      fetch: async (_url, init) => {
        seen.push(String((init.headers as Record<string, string>).authorization));
        return new Response(JSON.stringify({ tuningJobs: [] }), { status: 200 });
      },
    });
    await tuner.listJobs();
    expect(seen).toEqual(["Bearer ya29.adc-token-abcdef"]);
  });

  it("explain what to do when no credentials can be found", async () => {
    const previous = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = "/nonexistent/tunekit-key.json";
    try {
      const error = await new AdcAuth().headers().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).hint).toMatch(/gcloud auth application-default login/);
    } finally {
      if (previous === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = previous;
    }
  });
});

describe("names", () => {
  const defaults = { project: "p", location: "us-central1" };
  it("parses job names and bare ids", () => {
    expect(parseJobName("projects/x/locations/europe-west1/tuningJobs/42", defaults)).toEqual({
      name: "projects/x/locations/europe-west1/tuningJobs/42",
      project: "x",
      location: "europe-west1",
      id: "42",
    });
    expect(parseJobName("42", defaults).name).toBe(
      "projects/p/locations/us-central1/tuningJobs/42",
    );
    expect(() => parseJobName("tunedModels/abc", defaults)).toThrow(InvalidOptionError);
  });

  it("parses gs:// URIs and checks labels", () => {
    expect(parseGcsUri("gs://my-bucket/a/b/", "x")).toEqual({ bucket: "my-bucket", prefix: "a/b" });
    expect(parseGcsUri("gs://my-bucket", "x")).toEqual({ bucket: "my-bucket", prefix: "" });
    expect(() => parseGcsUri("https://storage.googleapis.com/b", "x")).toThrow(InvalidOptionError);
    expect(() => assertLabels({ team: "nlp", "env-1": "prod_2" })).not.toThrow();
    expect(() => assertLabels({ "1team": "x" })).toThrow(InvalidOptionError);
    expect(() => assertLabels({ team: "x".repeat(64) })).toThrow(InvalidOptionError);
  });
});

describe("wire → shared types", () => {
  it("maps every JOB_STATE_* to the shared states", () => {
    const table: Record<string, string> = {
      JOB_STATE_UNSPECIFIED: "pending",
      JOB_STATE_QUEUED: "pending",
      JOB_STATE_PENDING: "pending",
      JOB_STATE_RUNNING: "running",
      JOB_STATE_UPDATING: "running",
      JOB_STATE_CANCELLING: "running",
      JOB_STATE_PAUSED: "running",
      JOB_STATE_SUCCEEDED: "succeeded",
      JOB_STATE_FAILED: "failed",
      JOB_STATE_EXPIRED: "failed",
      JOB_STATE_PARTIALLY_SUCCEEDED: "failed",
      JOB_STATE_CANCELLED: "cancelled",
    };
    for (const [wire, shared] of Object.entries(table)) expect(toJobState(wire), wire).toBe(shared);
    expect(toJobState(undefined)).toBe("pending");
  });

  it("reads int64 strings in tuningDataStats and never invents completed steps", () => {
    const stats = {
      tuningDatasetExampleCount: "120",
      tuningStepCount: "45",
      totalBillableTokenCount: "9000",
      totalTruncatedExampleCount: "2",
      truncatedExampleIndices: ["3", "17"],
      droppedExampleReasons: ["example 9: no model turn"],
    };
    expect(toDataStats(stats)).toEqual({
      exampleCount: 120,
      tuningStepCount: 45,
      totalBillableTokenCount: 9000,
      truncatedExampleCount: 2,
      truncatedExampleIndices: [3, 17],
      droppedExampleReasons: ["example 9: no model turn"],
    });
    const running = progressFromJob({
      state: "JOB_STATE_RUNNING",
      tuningDataStats: { supervisedTuningDataStats: stats },
    });
    expect(running).toEqual({
      totalSteps: 45,
      metrics: {
        exampleCount: 120,
        tuningStepCount: 45,
        totalBillableTokenCount: 9000,
        truncatedExampleCount: 2,
        droppedExampleCount: 1,
      },
    });
    expect(running.completedSteps).toBeUndefined();
    expect(
      progressFromJob({
        state: "JOB_STATE_SUCCEEDED",
        tuningDataStats: { supervisedTuningDataStats: stats },
      }),
    ).toMatchObject({
      completedSteps: 45,
      totalSteps: 45,
      completedPercent: 100,
    });
    expect(progressFromJob({ state: "JOB_STATE_PENDING" })).toEqual({});
  });

  it("turns a job into model info with the stored template", () => {
    const info = toModelInfo({
      name: "projects/p/locations/l/tuningJobs/1",
      baseModel: "gemini-2.5-flash",
      tunedModelDisplayName: "bot",
      description: `mine\n\ntunekit-template:${JSON.stringify({ v: 1, instruction: INSTRUCTION })}`,
      state: "JOB_STATE_FAILED",
      supervisedTuningSpec: { hyperParameters: { epochCount: "4", learningRateMultiplier: 2 } },
    });
    expect(info).toEqual({
      name: "projects/p/locations/l/tuningJobs/1",
      baseModel: "gemini-2.5-flash",
      displayName: "bot",
      description: "mine",
      state: "failed",
      hyperparameters: { epochCount: 4, learningRateMultiplier: 2 },
      template: { instruction: INSTRUCTION, kind: "vertex-system-instruction" },
    });
  });
});
