/**
 * Every reply the Gemini and Vertex clients read is checked against its zod schema first: a
 * malformed reply is an `InvalidResponseError` naming the request and the field, never a crash
 * or a wrong value later. The schemas accept what proto3 JSON allows (int64 as a number,
 * "NaN" losses, unknown fields and enum values).
 */
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { InvalidResponseError } from "../../src/core/errors.js";
import { OperationSchema, TunedModelSchema } from "../../src/gemini/schemas.js";
import { FakeGeminiService, FakeVertexService } from "../../src/testing/index.js";
import { TuningJobSchema } from "../../src/vertex/schemas.js";
import { testTuner as geminiTuner } from "../gemini/helpers.js";
import { testTuner as vertexTuner } from "../vertex/helpers.js";

const GEMINI = "https://generativelanguage.googleapis.com";
const VERTEX = "https://us-central1-aiplatform.googleapis.com";
const JOB = "projects/tunekit-test/locations/us-central1/tuningJobs/123";

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

/** A `fetch` that answers from a fake service in-process. */
function fakeFetch(service: FakeGeminiService) {
  return async (input: string, init: RequestInit): Promise<Response> => {
    const result = await service.handle({
      method: init.method ?? "GET",
      url: input,
      headers: init.headers as Record<string, string>,
      body: typeof init.body === "string" ? init.body : undefined,
    });
    if (result.kind !== "response") throw new TypeError("fetch failed");
    return new Response(result.body, { status: result.status, headers: result.headers });
  };
}

async function rejection(promise: Promise<unknown>): Promise<InvalidResponseError> {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(InvalidResponseError);
  return error as InvalidResponseError;
}

describe("malformed Gemini replies", () => {
  it("a snapshot step that is not a number names the field and the request", async () => {
    server.use(
      http.get(`${GEMINI}/v1beta/tunedModels/m`, () =>
        HttpResponse.json({
          name: "tunedModels/m",
          state: "ACTIVE",
          tuningTask: {
            snapshots: [
              { step: 1, meanLoss: 2 },
              { step: "two", meanLoss: 1 },
            ],
          },
        }),
      ),
    );
    const error = await rejection(geminiTuner().getModel("tunedModels/m"));
    expect(error.field).toBe("tuningTask.snapshots[1].step");
    expect(error.message).toMatch(
      /^GET \/v1beta\/tunedModels\/m returned a malformed TunedModel: field "tuningTask\.snapshots\[1\]\.step": /,
    );
    expect(error.code).toBe("invalid_response");
  });

  it("an operation whose metadata is not an object fails the job's first check, typed", async () => {
    server.use(
      http.get(`${GEMINI}/v1beta/tunedModels/m/operations/op`, () =>
        HttpResponse.json({ name: "tunedModels/m/operations/op", metadata: "busy" }),
      ),
    );
    const error = await rejection(geminiTuner().getJob("tunedModels/m/operations/op"));
    expect(error.field).toBe("metadata");
  });

  it("a streamed event with candidates of the wrong type names the event", async () => {
    server.use(
      http.get(`${GEMINI}/v1beta/tunedModels/m`, () =>
        HttpResponse.json({ name: "tunedModels/m", state: "ACTIVE" }),
      ),
      http.post(
        `${GEMINI}/v1beta/tunedModels/m:streamGenerateContent`,
        () =>
          new HttpResponse(
            'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\r\n\r\ndata: {"candidates":"b"}\r\n\r\n',
            { headers: { "content-type": "text/event-stream" } },
          ),
      ),
    );
    const model = await geminiTuner().getModel("tunedModels/m");
    const chunks: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const chunk of model.generateStream("x")) chunks.push(chunk);
      })(),
    );
    expect(chunks).toEqual(["a"]);
    expect(error.field).toBe("candidates");
    expect(error.message).toContain("(event 2)");
  });

  it("accepts what proto3 JSON allows: NaN losses, unknown fields, new enum values", async () => {
    server.use(
      http.get(`${GEMINI}/v1beta/tunedModels/m`, () =>
        HttpResponse.json({
          name: "tunedModels/m",
          state: "SOME_NEW_STATE",
          futureField: { anything: true },
          tuningTask: { snapshots: [{ step: 1, epoch: "1", meanLoss: "NaN" }] },
        }),
      ),
    );
    const model = await geminiTuner().getModel("tunedModels/m");
    expect(model.info().state).toBe("unknown");
    // A snapshot whose loss is NaN is reported, not invented away.
    expect(model.info().snapshots?.[0]?.epoch).toBe(1);
  });
});

describe("malformed Vertex replies", () => {
  it("a step count that is not an integer names the field", async () => {
    server.use(
      http.get(`${VERTEX}/v1/${JOB}`, () =>
        HttpResponse.json({
          name: JOB,
          state: "JOB_STATE_RUNNING",
          tuningDataStats: { supervisedTuningDataStats: { tuningStepCount: "many" } },
        }),
      ),
    );
    const error = await rejection(vertexTuner().getJob(JOB));
    expect(error.field).toBe("tuningDataStats.supervisedTuningDataStats.tuningStepCount");
    expect(error.message).toContain(`GET /v1/${JOB} returned a malformed TuningJob`);
  });

  it("reads an int64 sent as a JSON number as its decimal string", async () => {
    server.use(
      http.get(`${VERTEX}/v1/${JOB}`, () =>
        HttpResponse.json({
          name: JOB,
          state: "JOB_STATE_SUCCEEDED",
          supervisedTuningSpec: { hyperParameters: { epochCount: 3 } },
        }),
      ),
    );
    const model = await vertexTuner().getModel(JOB);
    expect(model.info().hyperparameters).toEqual({ epochCount: 3 });
  });
});

describe("the exported schemas", () => {
  it("parse what the fakes answer", async () => {
    const gemini = new FakeGeminiService({ apiKey: null, tuningEnabled: true, stepsPerPoll: 0 });
    const model = gemini.seedTunedModel({ id: "s", state: "CREATING" });
    expect(TunedModelSchema.parse(model)).toEqual(model);
    gemini.tick(1);
    const [listed] = gemini.listTunedModels();
    const operation = gemini.getOperation(
      ((await (
        await geminiTuner({ fetch: fakeFetch(gemini) }).getJob("tunedModels/s")
      ).operationName) ?? "") as string,
    );
    expect(OperationSchema.parse(operation)).toEqual(operation);
    expect(TunedModelSchema.parse(listed)).toEqual(listed);
    const vertex = new FakeVertexService();
    vertex.putObject(
      "gs://b/t.jsonl",
      '{"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"model","parts":[{"text":"b"}]}]}',
    );
    const created = await vertex.handle({
      method: "POST",
      url: `${VERTEX}/v1/projects/p/locations/us-central1/tuningJobs`,
      headers: { authorization: "Bearer test-access-token" },
      body: JSON.stringify({
        baseModel: "gemini-2.5-flash",
        supervisedTuningSpec: { trainingDatasetUri: "gs://b/t.jsonl" },
      }),
    });
    expect(created.kind).toBe("response");
    vertex.completeAll();
    for (const job of vertex.listJobs()) expect(TuningJobSchema.parse(job)).toEqual(job);
  });
});
