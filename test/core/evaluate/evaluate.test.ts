/**
 * `evaluate()` scores any TunedModel the same way: built-in and user metrics, loss where the
 * model has it, slices, progress, concurrency and abort — and a fake-remote tuned model
 * through the real Gemini client.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../../src/core/dataset/dataset.js";
import type { Example } from "../../../src/core/dataset/example.js";
import { AbortedError, InvalidOptionError } from "../../../src/core/errors.js";
import {
  type EvaluationProgress,
  evaluate,
  type ResponseLoss,
} from "../../../src/core/evaluate/index.js";
import type { GenerateOptions, TunedModel } from "../../../src/core/types.js";
import { GeminiTuner } from "../../../src/gemini/tuner.js";
import {
  type FakeGeminiServer,
  type FakeVertexServer,
  startFakeGeminiServer,
  startFakeVertexServer,
} from "../../../src/testing/index.js";
import { VertexTuner } from "../../../src/vertex/tuner.js";

/** A model answering from a table, recording what it was asked and how. */
function tableModel(answers: Record<string, string>, delayMs = 0) {
  const calls: { input: string; options: GenerateOptions | undefined }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const model: TunedModel = {
    name: "table",
    baseModel: "none",
    info: () => ({ name: "table", baseModel: "none", state: "active" }),
    async generate(input, options) {
      calls.push({ input, options });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, delayMs));
      inFlight--;
      return answers[input] ?? "";
    },
  };
  return { model, calls, maxInFlight: () => maxInFlight };
}

const data = Dataset.from([
  { input: "9", output: "10", kind: "carry" },
  { input: "41", output: "42", kind: "plain" },
  { input: "nine", output: "Ten", kind: "words" },
  { input: "199", output: "200", kind: "carry" },
]);

describe("evaluate: generation metrics", () => {
  it("scores exact, normalised and contained matches per example and in total", async () => {
    const { model } = tableModel({
      "9": " 10\n", // exact after trimming
      "41": "the answer is 42", // contained only
      nine: "ten.", // normalised only
      "199": "2000", // wrong: "200" is not a whole word of it
    });
    const report = await evaluate(model, data);
    expect(report.model).toBe("table");
    expect(report.examples).toBe(4);
    expect(report.results.map((r) => r.scores)).toEqual([
      { exactMatch: 1, normalizedMatch: 1, contains: 1 },
      { exactMatch: 0, normalizedMatch: 0, contains: 1 },
      { exactMatch: 0, normalizedMatch: 1, contains: 1 },
      { exactMatch: 0, normalizedMatch: 0, contains: 0 },
    ]);
    expect(report.metrics).toEqual({ exactMatch: 0.25, normalizedMatch: 0.5, contains: 0.75 });
    expect(report.results[2]).toMatchObject({
      index: 2,
      position: { kind: "index", value: 2 },
      input: "nine",
      expected: "Ten",
      output: "ten.",
    });
    // No loss for a model that cannot compute one.
    expect(report.metrics.loss).toBeUndefined();
  });

  it("answers greedily by default and passes generation options through", async () => {
    const { model, calls } = tableModel({});
    await evaluate(model, data, { generation: { maxOutputTokens: 8, topK: 3 } });
    expect(calls[0]?.options).toEqual({ temperature: 0, maxOutputTokens: 8, topK: 3 });
  });

  it("adds user scorers (numbers or booleans) and checks what they return", async () => {
    const { model } = tableModel({ "9": "10", "41": "42", nine: "ten", "199": "200" });
    const report = await evaluate(model, data, {
      metrics: ["exactMatch"],
      scorers: {
        numeric: ({ output }) => /^\d+$/.test(output),
        length: async ({ output, expected }) => Math.min(1, output.length / expected.length),
      },
    });
    expect(report.metrics).toEqual({ exactMatch: 0.75, numeric: 0.75, length: 1 });
    await expect(evaluate(model, data, { scorers: { bad: () => 2 } })).rejects.toThrow(
      /scorer bad returned 2 for example 0/,
    );
    await expect(
      evaluate(model, data, { scorers: { exactMatch: () => 1 } }),
    ).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it("slices by a record field or a function, in order of appearance", async () => {
    const { model } = tableModel({ "9": "10", "41": "42", nine: "nine", "199": "190" });
    const report = await evaluate(model, data, { groupBy: "kind", metrics: ["exactMatch"] });
    expect(report.slices).toEqual({
      carry: { examples: 2, metrics: { exactMatch: 0.5 } },
      plain: { examples: 1, metrics: { exactMatch: 1 } },
      words: { examples: 1, metrics: { exactMatch: 0 } },
    });
    expect(report.results.map((r) => r.group)).toEqual(["carry", "plain", "words", "carry"]);
    const byLength = await evaluate(model, data.examples, {
      metrics: ["exactMatch"],
      groupBy: (e) => (e.input.length > 2 ? "long" : undefined),
    });
    expect(Object.keys(byLength.slices ?? {})).toEqual(["(none)", "long"]);
    // A field name needs the records, so an array of examples is refused.
    await expect(evaluate(model, data.examples, { groupBy: "kind" })).rejects.toThrow(
      /must be a Dataset/,
    );
    // Records without the field are in "(none)".
    const missing = await evaluate(model, data, { groupBy: "topic", metrics: ["exactMatch"] });
    expect(Object.keys(missing.slices ?? {})).toEqual(["(none)"]);
  });

  it("reports progress and keeps at most `concurrency` requests in flight", async () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ input: String(i), output: "x" }));
    const progress: EvaluationProgress[] = [];
    const fake = tableModel({}, 5);
    await evaluate(fake.model, many, {
      concurrency: 3,
      onProgress: (p) => progress.push(p),
    });
    expect(fake.maxInFlight()).toBe(3);
    expect(progress.map((p) => p.completed)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(progress.every((p) => p.phase === "generate" && p.total === 12)).toBe(true);
    const remoteDefault = tableModel({}, 5);
    await evaluate(remoteDefault.model, many);
    expect(remoteDefault.maxInFlight()).toBe(4);
  });

  it("stops when the signal fires and rejects with AbortedError", async () => {
    const many = Array.from({ length: 50 }, (_, i) => ({ input: String(i), output: "x" }));
    const controller = new AbortController();
    const fake = tableModel({}, 2);
    const running = evaluate(fake.model, many, {
      concurrency: 2,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.completed === 4) controller.abort();
      },
    });
    await expect(running).rejects.toBeInstanceOf(AbortedError);
    expect(fake.calls.length).toBeLessThan(10);
    // The signal reaches the model's generate too.
    expect(fake.calls[0]?.options?.signal).toBe(controller.signal);
  });

  it("refuses bad input with typed errors naming the option", async () => {
    const { model } = tableModel({});
    const cases: [unknown, unknown, object, string][] = [
      [model, [], {}, "dataset"],
      [model, [{ input: 1, output: "x" }], {}, "dataset[0]"],
      [model, data, { concurrency: 0 }, "concurrency"],
      [model, data, { metrics: ["bleu"] }, "metrics"],
      [model, data, { generate: false }, "generate"],
      [{ name: "x" }, data, {}, "model"],
    ];
    for (const [m, d, o, path] of cases) {
      const error = await evaluate(m as TunedModel, d as Example[], o).catch((e: unknown) => e);
      expect(error, path).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).path).toBe(path);
    }
  });
});

describe("evaluate: response loss", () => {
  /** A model with fixed per-example losses, like a local model. */
  const lossModel = (losses: ResponseLoss[]) => ({
    ...tableModel({ "9": "10" }).model,
    async responseLosses(
      examples: readonly Example[],
      options?: { onExample?: (i: number) => void },
    ) {
      return examples.map((_, i) => {
        options?.onExample?.(i);
        return losses[i] as ResponseLoss;
      });
    },
  });

  it("reports token-weighted loss and its perplexity, per example and per slice", async () => {
    const model = lossModel([
      { sum: 2, tokens: 2 },
      { sum: 3, tokens: 1 },
      { sum: 0, tokens: 2 },
      { sum: 1, tokens: 1 },
    ]);
    const progress: EvaluationProgress[] = [];
    const report = await evaluate(model, data, {
      groupBy: "kind",
      onProgress: (p) => progress.push(p),
    });
    expect(report.metrics.loss).toBeCloseTo(6 / 6);
    expect(report.metrics.perplexity).toBeCloseTo(Math.E);
    expect(report.results.map((r) => [r.loss, r.tokens])).toEqual([
      [1, 2],
      [3, 1],
      [0, 2],
      [1, 1],
    ]);
    expect(report.slices?.carry?.metrics.loss).toBeCloseTo(3 / 3);
    expect(progress.filter((p) => p.phase === "loss")).toHaveLength(4);
  });

  it("computes loss alone with generate: false, and skips it with loss: false", async () => {
    const model = lossModel(data.examples.map(() => ({ sum: 1, tokens: 1 })));
    const lossOnly = await evaluate(model, data, { generate: false });
    expect(lossOnly.metrics).toEqual({ loss: 1, perplexity: Math.E });
    expect(lossOnly.results[0]?.output).toBeUndefined();
    const noLoss = await evaluate(model, data, { loss: false, metrics: ["exactMatch"] });
    expect(noLoss.metrics).toEqual({ exactMatch: 0.25 });
  });
});

describe("evaluate: a fake-remote tuned model", () => {
  const API_KEY = "AIzaSyTEST-evaluate-key-0123456789abcde";
  let fake: FakeGeminiServer;
  beforeAll(async () => {
    fake = await startFakeGeminiServer({ apiKey: API_KEY, tuningEnabled: true, stepsPerPoll: 5 });
  });
  afterAll(() => fake.close());

  it("scores a Gemini tuned model through the same API", async () => {
    const tuner = new GeminiTuner({
      apiKey: API_KEY,
      baseUrl: fake.url,
      pollIntervalMs: 2,
      maxPollIntervalMs: 5,
    });
    const train = Dataset.from(
      Array.from({ length: 20 }, (_, i) => ({ text_input: String(i), output: String(i + 1) })),
    );
    const job = await tuner.tune({
      baseModel: "models/gemini-1.5-flash-001-tuning",
      dataset: train,
    });
    const model = await job.wait();
    // The fake answers inputs it was trained on with their output, anything else otherwise.
    const heldOut = Dataset.from([
      { input: "3", output: "4", kind: "seen" },
      { input: "7", output: "8", kind: "seen" },
      { input: "100", output: "101", kind: "unseen" },
    ]);
    const progress: number[] = [];
    const report = await evaluate(model, heldOut, {
      groupBy: "kind",
      concurrency: 2,
      onProgress: (p) => progress.push(p.completed),
    });
    expect(report.model).toBe(model.name);
    expect(report.metrics.exactMatch).toBeCloseTo(2 / 3);
    expect(report.slices?.seen?.metrics.exactMatch).toBe(1);
    expect(report.slices?.unseen?.metrics.exactMatch).toBe(0);
    expect(report.results[2]?.output).toContain("100");
    expect(report.metrics.loss).toBeUndefined();
    expect(progress).toHaveLength(3);
  });
});

describe("evaluate: a fake Vertex AI tuned model", () => {
  const TOKEN = "ya29.evaluate-token";
  let fake: FakeVertexServer;
  beforeAll(async () => {
    fake = await startFakeVertexServer({ accessToken: TOKEN, stepsPerPoll: 2 });
  });
  afterAll(() => fake.close());

  it("scores a Vertex tuned model through the same API", async () => {
    const tuner = new VertexTuner({
      project: "evaluate",
      location: "us-central1",
      accessToken: TOKEN,
      stagingUri: "gs://evaluate-bucket/runs",
      baseUrl: fake.url,
      storageBaseUrl: fake.url,
      pollIntervalMs: 2,
      maxPollIntervalMs: 5,
      env: {},
    });
    const train = Dataset.from(
      Array.from({ length: 20 }, (_, i) => ({ input: String(i), output: String(i + 1) })),
    );
    const job = await tuner.tune({ baseModel: "gemini-2.5-flash", dataset: train });
    const model = await job.wait();
    const report = await evaluate(model, [
      { input: "5", output: "6" },
      { input: "500", output: "501" },
    ]);
    expect(report.model).toBe(model.name);
    expect(report.results.map((r) => r.scores.exactMatch)).toEqual([1, 0]);
  });
});
