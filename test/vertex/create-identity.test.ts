/**
 * Vertex AI picks job ids itself, so a create is never sent twice once the service may have
 * acted on it: after a timeout or a lost answer tunekit looks for the job by the request's
 * label (decided before the first attempt) and attaches only to that one. Only answers that
 * prove the service did nothing (429, 503) lead to a second create.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { UnavailableError } from "../../src/core/errors.js";
import { type FakeVertexServer, startFakeVertexServer } from "../../src/testing/index.js";
import { REQUEST_LABEL_KEY } from "../../src/vertex/names.js";
import { BASE_MODEL, INSTRUCTION, incrementDataset, TOKEN, testTuner } from "./helpers.js";

let fake: FakeVertexServer;
beforeAll(async () => {
  fake = await startFakeVertexServer({ accessToken: TOKEN });
});
afterEach(() => fake.service.reset());
afterAll(() => fake.close());

const tuner = (options: Parameters<typeof testTuner>[0] = {}) =>
  testTuner({ baseUrl: fake.url, storageBaseUrl: fake.url, ...options });
const request = () => ({
  baseModel: BASE_MODEL,
  dataset: incrementDataset(24, INSTRUCTION),
  hyperparameters: { epochCount: 2 },
});
const creates = () => fake.service.requests.filter((r) => r.route === "createTuningJob");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("VertexTuner.tune when the first create is slow", () => {
  it("creates exactly one job when the service acts on attempt 1 after the client's timeout", async () => {
    fake.service.faults.delay(400, { route: "createTuningJob" });
    const job = await tuner({ timeoutMs: 150 }).tune(request());
    await sleep(500); // let the slow attempt finish on the server
    const jobs = fake.service.listJobs();
    expect(jobs).toHaveLength(1);
    expect(job.name).toBe(jobs[0]?.name);
    const labels = jobs.map((j) => (j.labels as Record<string, string>)[REQUEST_LABEL_KEY]);
    expect(new Set(labels).size).toBe(1);
    expect(creates()).toHaveLength(1);
  });
});

describe("VertexTuner.tune when the create answer is lost and the lookup fails", () => {
  it("rejects with an error that says the job may exist and how to find it", async () => {
    fake.service.faults.loseResponse({ route: "createTuningJob" });
    fake.service.faults.unavailable({ route: "listTuningJobs", times: Infinity });
    const error = await tuner({ createRecoveryMs: 200 })
      .tune(request())
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnavailableError);
    const label = (creates()[0]!.body as { labels: Record<string, string> }).labels[
      REQUEST_LABEL_KEY
    ];
    const message = (error as Error).message;
    expect(message).toContain("may exist");
    expect(message).toContain(`findJobByRequestLabel("${label}")`);
    expect(fake.service.listJobs()).toHaveLength(1);
  });
});

describe("VertexTuner.tune when the create is refused", () => {
  it("a 400 proves nothing was made: no lookup, no 'may exist', at once", async () => {
    fake.service.faults.httpError(400, { route: "createTuningJob", message: "Bad base model." });
    const error = await tuner({ createRecoveryMs: 30_000 })
      .tune(request())
      .catch((caught: unknown) => caught);
    expect((error as { code?: string }).code).toBe("bad_request");
    expect((error as Error).message).not.toContain("may exist");
    expect(fake.service.requests.some((r) => r.route === "listTuningJobs")).toBe(false);
    expect(creates()).toHaveLength(1);
  });
});
