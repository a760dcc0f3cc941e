/** The fake Vertex AI + Cloud Storage service on its own (tunekit/testing). */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setupServer } from "msw/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AIPLATFORM_DISCOVERY_REVISION,
  AIPLATFORM_SCHEMAS,
  checkVertexTraffic,
  createFakeVertexHandlers,
  FakeVertexService,
  startFakeVertexServer,
  VERTEX_SCHEMAS,
  validateAgainstSchema,
} from "../../../src/testing/index.js";
import { extractSchemaSubset } from "../../../src/testing/shared/schema-subset.js";
import { VERTEX_ROOT_SCHEMAS } from "../../../src/testing/vertex/schema-roots.js";
import { toVertexJsonl } from "../../../src/vertex/dataset.js";

const TOKEN = "test-access-token";
const HOST = "https://us-central1-aiplatform.googleapis.com";
const PARENT = "projects/p/locations/us-central1";
const TRAIN = "gs://bucket/train.jsonl";
const examples = Array.from({ length: 16 }, (_, i) => ({
  instruction: "Add one.",
  input: String(i),
  output: String(i + 1),
}));

// biome-ignore lint/suspicious/noExplicitAny: loose access to JSON replies in assertions
type Json = Record<string, any>;

function call(
  service: FakeVertexService,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  host = HOST,
) {
  return service
    .handle({
      method,
      url: `${host}${path}`,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    })
    .then((result) => {
      if (result.kind !== "response") return { status: 0, body: {} as Json, headers: {} };
      return {
        status: result.status,
        body: JSON.parse(result.body) as Json,
        headers: result.headers,
      };
    });
}

const createBody = (overrides: Json = {}) => ({
  baseModel: "gemini-2.5-flash",
  supervisedTuningSpec: { trainingDatasetUri: TRAIN, hyperParameters: { epochCount: "2" } },
  labels: { tunekit_request: "abc123" },
  ...overrides,
});

describe("the bundled aiplatform schema subset", () => {
  const spec = fileURLToPath(
    new URL("../../../../shared/spec/aiplatform-v1.discovery.json", import.meta.url),
  );
  it.skipIf(!existsSync(spec))(
    "equals the $ref closure of the root schemas in ../shared/spec/aiplatform-v1.discovery.json",
    () => {
      const document = JSON.parse(readFileSync(spec, "utf8")) as {
        revision: string;
        schemas: Record<string, unknown>;
      };
      expect(AIPLATFORM_DISCOVERY_REVISION).toBe(document.revision);
      expect(AIPLATFORM_SCHEMAS).toEqual(extractSchemaSubset(document, VERTEX_ROOT_SCHEMAS));
    },
  );

  it("holds the tuning schemas, with int64 epochCount as a string", () => {
    const hyper = AIPLATFORM_SCHEMAS.GoogleCloudAiplatformV1SupervisedHyperParameters;
    expect(hyper?.properties?.epochCount).toEqual({ format: "int64", type: "string" });
    expect(
      validateAgainstSchema({ epochCount: 3 }, "GoogleCloudAiplatformV1SupervisedHyperParameters", {
        schemas: VERTEX_SCHEMAS,
      }).issues[0]?.message,
    ).toMatch(/int64 travels as a string/);
    for (const name of VERTEX_ROOT_SCHEMAS) expect(AIPLATFORM_SCHEMAS[name], name).toBeDefined();
  });
});

describe("FakeVertexService", () => {
  let service: FakeVertexService;
  beforeEach(() => {
    service = new FakeVertexService({ stepsPerPoll: 0 });
    service.putObject(TRAIN, toVertexJsonl(examples));
  });

  it("answers like Google: 401 without a token, 400 for a wrong schema, 400 FAILED_PRECONDITION for missing data", async () => {
    const parent = `/v1/${PARENT}/tuningJobs`;
    expect((await call(service, "GET", parent, undefined, {})).body.error).toMatchObject({
      code: 401,
      status: "UNAUTHENTICATED",
    });
    const wrongType = await call(
      service,
      "POST",
      parent,
      createBody({
        supervisedTuningSpec: { trainingDatasetUri: TRAIN, hyperParameters: { epochCount: "two" } },
      }),
    );
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toBe(
      `Invalid value at 'tuning_job.supervised_tuning_spec.hyper_parameters.epoch_count' (TYPE_INT64), "two"`,
    );
    expect(wrongType.body.error.details[0].fieldViolations[0].field).toBe(
      "tuning_job.supervised_tuning_spec.hyper_parameters.epoch_count",
    );
    const unknown = await call(service, "POST", parent, createBody({ batchSize: 4 }));
    expect(unknown.body.error.message).toMatch(/Unknown name "batchSize"/);
    const missing = await call(
      service,
      "POST",
      parent,
      createBody({
        supervisedTuningSpec: { trainingDatasetUri: "gs://bucket/none.jsonl" },
      }),
    );
    expect(missing.body.error).toMatchObject({ code: 400, status: "FAILED_PRECONDITION" });
    const base = await call(service, "POST", parent, createBody({ baseModel: "text-bison" }));
    expect(base.body.error.status).toBe("INVALID_ARGUMENT");
    const mismatch = await call(
      service,
      "GET",
      parent,
      undefined,
      undefined,
      "https://europe-west4-aiplatform.googleapis.com",
    );
    expect(mismatch.body.error.message).toMatch(/not supported by the europe-west4-aiplatform/);
    expect(service.listJobs()).toHaveLength(0);
  });

  it("serves v1beta1 like v1 (Google's GenAI SDKs default to it), reading proto3 JSON forms", async () => {
    const created = await call(service, "POST", `/v1beta1/${PARENT}/tuningJobs`, {
      base_model: "gemini-2.5-flash",
      // Proto field names, int64 as a JSON number and an enum by number (ADAPTER_SIZE_FOUR
      // is 2, though the discovery document lists it third): all proto3 JSON.
      supervised_tuning_spec: {
        training_dataset_uri: TRAIN,
        hyper_parameters: { epoch_count: 2, adapter_size: 2 },
      },
    });
    expect(created.status).toBe(200);
    expect(created.body.supervisedTuningSpec.hyperParameters).toEqual({
      epochCount: "2",
      adapterSize: "ADAPTER_SIZE_FOUR",
    });
    const name = created.body.name as string;
    const v1 = await call(service, "GET", `/v1/${name}`);
    expect(v1.body.name).toBe(name);
    const ints = await call(service, "GET", `/v1beta1/${name}?$alt=json;enum-encoding=int`);
    expect(ints.body.state).toBe(2); // JOB_STATE_PENDING
    expect(ints.body.supervisedTuningSpec.hyperParameters.adapterSize).toBe(2);
    expect(service.requests.at(-1)?.apiVersion).toBe("v1beta1");
    expect((await call(service, "GET", `/v2/${name}`)).status).toBe(404);
  });

  it("moves a job PENDING → RUNNING (with tuningDataStats) → SUCCEEDED with its clock", async () => {
    const created = await call(service, "POST", `/v1/${PARENT}/tuningJobs`, createBody());
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      state: "JOB_STATE_PENDING",
      createTime: "2026-01-01T00:00:00.000Z",
      labels: { tunekit_request: "abc123" },
    });
    expect(created.body.name).toMatch(/^projects\/p\/locations\/us-central1\/tuningJobs\/\d{19}$/);
    const path = `/v1/${created.body.name}`;
    service.tick(1);
    const running = (await call(service, "GET", path)).body;
    expect(running.state).toBe("JOB_STATE_RUNNING");
    expect(running.startTime).toBe("2026-01-01T00:00:01.000Z");
    // 16 examples × 2 epochs / 8 = 4 steps.
    expect(running.tuningDataStats.supervisedTuningDataStats).toMatchObject({
      tuningDatasetExampleCount: "16",
      tuningStepCount: "4",
      totalTruncatedExampleCount: "0",
    });
    service.tick(4);
    const done = (await call(service, "GET", path)).body;
    expect(done.state).toBe("JOB_STATE_SUCCEEDED");
    expect(done.endTime).toBe("2026-01-01T00:00:05.000Z");
    expect(done.tunedModel.endpoint).toMatch(
      /^projects\/p\/locations\/us-central1\/endpoints\/\d+$/,
    );
    const generated = await call(
      service,
      "POST",
      `/v1/${done.tunedModel.endpoint}:generateContent`,
      {
        contents: [{ role: "user", parts: [{ text: "3" }] }],
        systemInstruction: { parts: [{ text: "Add one." }] },
      },
    );
    expect(generated.body.candidates[0].content.parts[0].text).toBe("4");
    expect(checkVertexTraffic(service.requests)).toEqual([]);
  });

  it("cancels asynchronously: CANCELLING, then CANCELLED with error code 1; a finished job cannot be cancelled", async () => {
    service = new FakeVertexService({ stepsPerPoll: 0, cancelLatencySteps: 2 });
    service.putObject(TRAIN, toVertexJsonl(examples));
    const { body: job } = await call(service, "POST", `/v1/${PARENT}/tuningJobs`, createBody());
    service.tick(2);
    expect((await call(service, "POST", `/v1/${job.name}:cancel`, {})).body).toEqual({});
    expect(service.getJob(job.name)?.state).toBe("JOB_STATE_CANCELLING");
    service.tick(2);
    expect(service.getJob(job.name)).toMatchObject({
      state: "JOB_STATE_CANCELLED",
      error: { code: 1, message: "CANCELED" },
    });
    const again = await call(service, "POST", `/v1/${job.name}:cancel`, {});
    expect(again.body.error.status).toBe("FAILED_PRECONDITION");
  });

  it("lets a job finish before a slow cancel takes effect (best effort)", async () => {
    service = new FakeVertexService({ stepsPerPoll: 0, cancelLatencySteps: 50 });
    service.putObject(TRAIN, toVertexJsonl(examples));
    const { body: job } = await call(service, "POST", `/v1/${PARENT}/tuningJobs`, createBody());
    service.tick(2);
    await call(service, "POST", `/v1/${job.name}:cancel`, {});
    service.completeAll();
    expect(service.getJob(job.name)?.state).toBe("JOB_STATE_SUCCEEDED");
  });

  it("reports truncated examples and fails a job at a planned step", async () => {
    service = new FakeVertexService({ stepsPerPoll: 0, maxExampleChars: 20 });
    service.putObject(TRAIN, toVertexJsonl([...examples, { input: "x".repeat(30), output: "y" }]));
    service.faults.failTuningAtStep({
      atStep: 2,
      status: "RESOURCE_EXHAUSTED",
      message: "Out of quota.",
    });
    const { body: job } = await call(service, "POST", `/v1/${PARENT}/tuningJobs`, createBody());
    service.tick(1);
    expect(service.getJob(job.name)?.tuningDataStats).toMatchObject({
      supervisedTuningDataStats: {
        totalTruncatedExampleCount: "1",
        truncatedExampleIndices: ["16"],
      },
    });
    service.completeAll();
    expect(service.getJob(job.name)).toMatchObject({
      state: "JOB_STATE_FAILED",
      error: { code: 8, message: "Out of quota." },
    });
  });

  it("shares the Gemini fake's fault injection (loseResponse targets createTuningJob)", async () => {
    service.faults.rateLimit({ route: "listTuningJobs", retryAfterSeconds: 2 });
    const limited = await call(service, "GET", `/v1/${PARENT}/tuningJobs`);
    expect(limited.status).toBe(429);
    expect(limited.headers).toMatchObject({ "retry-after": "2" });
    const handle = service.faults.loseResponse();
    const lost = await service.handle({
      method: "POST",
      url: `${HOST}/v1/${PARENT}/tuningJobs`,
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(createBody()),
    });
    expect(lost).toEqual({ kind: "network-error", reason: "response-lost" });
    expect(handle.hits).toBe(1);
    expect(service.listJobs()).toHaveLength(1);
  });

  it("lists newest first with pages and label/state filters; rejects filters it does not know", async () => {
    for (let i = 0; i < 3; i++) {
      await call(
        service,
        "POST",
        `/v1/${PARENT}/tuningJobs`,
        createBody({ labels: { n: String(i) } }),
      );
    }
    const first = (await call(service, "GET", `/v1/${PARENT}/tuningJobs?pageSize=2`)).body;
    expect(first.tuningJobs.map((j: Json) => j.labels.n)).toEqual(["2", "1"]);
    const second = (
      await call(
        service,
        "GET",
        `/v1/${PARENT}/tuningJobs?pageSize=2&pageToken=${first.nextPageToken}`,
      )
    ).body;
    expect(second.tuningJobs.map((j: Json) => j.labels.n)).toEqual(["0"]);
    expect(second.nextPageToken).toBeUndefined();
    const filtered = (
      await call(
        service,
        "GET",
        `/v1/${PARENT}/tuningJobs?filter=${encodeURIComponent('labels.n="1" AND state="JOB_STATE_PENDING"')}`,
      )
    ).body;
    expect(filtered.tuningJobs).toHaveLength(1);
    const bad = await call(
      service,
      "GET",
      `/v1/${PARENT}/tuningJobs?filter=${encodeURIComponent("create_time>1")}`,
    );
    expect(bad.status).toBe(400);
  });

  it("stores media uploads and refuses other upload types and unknown buckets", async () => {
    service = new FakeVertexService({ buckets: ["bucket"] });
    const ok = await call(
      service,
      "POST",
      "/upload/storage/v1/b/bucket/o?uploadType=media&name=a%2Fb.jsonl",
      "{}\n",
      {
        authorization: `Bearer ${TOKEN}`,
        "content-type": "application/jsonl",
      },
      "https://storage.googleapis.com",
    );
    expect(ok.body).toMatchObject({
      kind: "storage#object",
      bucket: "bucket",
      name: "a/b.jsonl",
      size: "3",
    });
    expect(service.getObject("gs://bucket/a/b.jsonl")?.text).toBe("{}\n");
    const multipart = await call(
      service,
      "POST",
      "/upload/storage/v1/b/bucket/o?uploadType=multipart&name=x",
      "",
      undefined,
      "https://storage.googleapis.com",
    );
    expect(multipart.status).toBe(400);
    const nobucket = await call(
      service,
      "POST",
      "/upload/storage/v1/b/other/o?uploadType=media&name=x",
      "x",
      undefined,
      "https://storage.googleapis.com",
    );
    expect(nobucket.status).toBe(404);
    expect(checkVertexTraffic(service.requests)).toEqual([]);
  });
});

describe("resumable uploads", () => {
  it("open a session, take 256 KiB-multiple chunks, report progress with 308 + Range, finish with the object", async () => {
    const service = new FakeVertexService();
    const auth = { authorization: `Bearer ${TOKEN}` };
    const storage = "https://storage.googleapis.com";
    const start = await service.handle({
      method: "POST",
      url: `${storage}/upload/storage/v1/b/bucket/o?uploadType=resumable&name=big.jsonl`,
      headers: { ...auth, "x-upload-content-type": "application/jsonl" },
      body: JSON.stringify({ name: "big.jsonl", contentType: "application/jsonl" }),
    });
    if (start.kind !== "response") throw new Error("no response");
    const session = new URL(start.headers.location as string);
    expect(session.searchParams.get("upload_id")).toMatch(/^ADPycd\d+$/);
    const put = async (range: string, bytes: Uint8Array) => {
      const result = await service.handle({
        method: "PUT",
        url: session.href,
        headers: { ...auth, "content-range": range },
        body: Buffer.from(bytes).toString("utf8"),
        bodyBytes: bytes,
      });
      if (result.kind !== "response") throw new Error("no response");
      return result;
    };
    const quantum = 256 * 1024;
    // "é" is 2 bytes: a chunk boundary splits it, and the object must still decode.
    const text = "é".repeat(quantum); // 512 KiB
    const bytes = Buffer.from(text, "utf8");
    expect((await put("bytes */*", new Uint8Array(0))).status).toBe(308);
    expect((await put("bytes 0-99/*", bytes.subarray(0, 100))).status).toBe(400); // not a multiple
    const first = await put(`bytes 0-${quantum - 1}/*`, bytes.subarray(0, quantum));
    expect(first.status).toBe(308);
    expect(first.headers.range).toBe(`bytes=0-${quantum - 1}`);
    // A resend of bytes the session already has is skipped.
    expect((await put(`bytes 0-${quantum - 1}/*`, bytes.subarray(0, quantum))).headers.range).toBe(
      `bytes=0-${quantum - 1}`,
    );
    const last = await put(
      `bytes ${quantum}-${2 * quantum - 1}/${2 * quantum}`,
      bytes.subarray(quantum),
    );
    expect(last.status).toBe(200);
    expect(JSON.parse(last.body)).toMatchObject({ name: "big.jsonl", size: String(2 * quantum) });
    expect(service.getObject("gs://bucket/big.jsonl")?.text).toBe(text);
    expect(service.getObject("gs://bucket/big.jsonl")?.contentType).toBe("application/jsonl");
  });
});

describe("transports", () => {
  const service = new FakeVertexService();
  const server = setupServer(...createFakeVertexHandlers(service));
  beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
  afterAll(() => server.close());

  it("msw intercepts every regional host, the global host and Cloud Storage", async () => {
    const headers = { authorization: `Bearer ${TOKEN}` };
    for (const host of [
      HOST,
      "https://europe-west4-aiplatform.googleapis.com",
      "https://aiplatform.googleapis.com",
    ]) {
      const location = host.includes("europe")
        ? "europe-west4"
        : host.includes("us-")
          ? "us-central1"
          : "global";
      const response = await fetch(`${host}/v1/projects/p/locations/${location}/tuningJobs`, {
        headers,
      });
      expect(response.status, host).toBe(200);
    }
    const upload = await fetch(
      "https://storage.googleapis.com/upload/storage/v1/b/b/o?uploadType=media&name=x",
      {
        method: "POST",
        headers,
        body: "hello",
      },
    );
    expect(((await upload.json()) as Json).size).toBe("5");
  });
});

// After the msw block has closed its interceptor (msw would catch 127.0.0.1 too).
describe("the real HTTP server", () => {
  it("answers Vertex and Cloud Storage paths", async () => {
    const fake = await startFakeVertexServer({ accessToken: null });
    try {
      const upload = await fetch(
        `${fake.url}/upload/storage/v1/b/b/o?uploadType=media&name=t.jsonl`,
        {
          method: "POST",
          body: toVertexJsonl(examples),
        },
      );
      expect(upload.status).toBe(200);
      const created = await fetch(`${fake.url}/v1/${PARENT}/tuningJobs`, {
        method: "POST",
        body: JSON.stringify(
          createBody({ supervisedTuningSpec: { trainingDatasetUri: "gs://b/t.jsonl" } }),
        ),
      });
      expect(((await created.json()) as Json).state).toBe("JOB_STATE_PENDING");
    } finally {
      await fake.close();
    }
  });
});
