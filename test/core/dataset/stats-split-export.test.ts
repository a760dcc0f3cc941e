import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import {
  Dataset,
  foldInstruction,
  mulberry32,
  toGeminiExamples,
} from "../../../src/core/dataset/index.js";
import { InvalidOptionError } from "../../../src/core/errors.js";
import { geminiRecords, toJsonl, useTempDir } from "./helpers.js";

describe("stats", () => {
  it("counts examples and summarises lengths in code points (nearest-rank percentiles)", () => {
    const records = Array.from({ length: 100 }, (_, i) => ({
      input: "a".repeat(i + 1),
      output: "😀",
    }));
    const stats = Dataset.from(records).stats();
    expect(stats.count).toBe(100);
    expect(stats.input).toEqual({ min: 1, max: 100, mean: 50.5, p50: 50, p90: 90, p99: 99 });
    expect(stats.output).toEqual({ min: 1, max: 1, mean: 1, p50: 1, p90: 1, p99: 1 });
    expect(stats.withInstruction).toBe(0);
  });

  it("counts exact duplicates and inputs that appear with different outputs", () => {
    const stats = Dataset.from([
      { input: "1", output: "2" },
      { input: "1", output: "2" }, // exact duplicate
      { input: "1", output: "3" }, // conflicting: input "1" now has two outputs
      { input: "1", output: "3" }, // exact duplicate of the previous one
      { input: "5", output: "6" },
      { instruction: "other task", input: "5", output: "7" }, // different instruction: not a conflict
      { input: "8", output: "9" },
      { input: "8", output: "10" }, // conflicting
      { input: "8", output: "11" }, // same input again: still one conflicting input
    ]).stats();
    expect(stats.exactDuplicates).toBe(2);
    expect(stats.conflictingInputs).toBe(2);
    expect(stats.withInstruction).toBe(1);
  });
});

describe("split", () => {
  const dataset = Dataset.from(geminiRecords(100));
  const inputs = (d: Dataset) => d.examples.map((e) => e.input);

  it("is deterministic for a seed and differs across seeds", () => {
    const a = dataset.split({ validationFraction: 0.2, seed: 42 });
    const b = dataset.split({ validationFraction: 0.2, seed: 42 });
    const c = dataset.split({ validationFraction: 0.2, seed: 7 });
    expect(inputs(a.validation)).toEqual(inputs(b.validation));
    expect(inputs(a.train)).toEqual(inputs(b.train));
    expect(inputs(a.validation)).not.toEqual(inputs(c.validation));
  });

  it("partitions the examples, keeps source order and positions", () => {
    const { train, validation } = dataset.split({ validationSize: 10, seed: 1 });
    expect(train.size).toBe(90);
    expect(validation.size).toBe(10);
    expect(new Set([...inputs(train), ...inputs(validation)]).size).toBe(100);
    const numbers = inputs(validation).map(Number);
    expect(numbers).toEqual([...numbers].sort((x, y) => x - y));
    const first = Number(validation.examples[0]?.input);
    expect(validation.positionOf(0)).toEqual({ kind: "index", value: first });
    expect(validation.source).toBe("array");
  });

  it("rounds a fraction and keeps at least one example on each side", () => {
    expect(dataset.split({ validationFraction: 0.155 }).validation.size).toBe(16);
    expect(dataset.split({ validationFraction: 0.001 }).validation.size).toBe(1);
    expect(dataset.split({ validationFraction: 0.999 }).train.size).toBe(1);
  });

  it("rejects bad options and datasets too small to split", () => {
    expect(() => dataset.split({})).toThrowError(InvalidOptionError);
    expect(() => dataset.split({ validationFraction: 0.1, validationSize: 3 })).toThrowError(
      /exactly one/,
    );
    expect(() => dataset.split({ validationFraction: 1 })).toThrowError(InvalidOptionError);
    expect(() => dataset.split({ validationSize: 100 })).toThrowError(/from 1 to 99/);
    expect(() => dataset.split({ validationSize: 1, seed: 1.5 })).toThrowError(/seed/);
    expect(() => Dataset.from(geminiRecords(1)).split({ validationSize: 1 })).toThrowError(
      /cannot split 1 example/,
    );
  });

  it("gives the same split in every version: seeded mulberry32 + Fisher–Yates", () => {
    const random = mulberry32(42);
    expect([random(), random(), random()]).toEqual([
      0.6011037519201636, 0.44829055899754167, 0.8524657934904099,
    ]);
    const { validation } = dataset.split({ validationSize: 5, seed: 42 });
    expect(inputs(validation)).toEqual(["7", "53", "70", "93", "99"]);
  });
});

describe("export", () => {
  const files = useTempDir();
  const dataset = Dataset.from([
    { instruction: "Translate to French.", input: "cat", output: "chat" },
    { instruction: "Say hello.", input: "", output: "Bonjour" },
    { instruction: "", input: "1", output: "2" },
  ]);

  it("writes JSONL that loads back to the same examples", async () => {
    expect(dataset.toJSONL()).toBe(
      '{"instruction":"Translate to French.","input":"cat","output":"chat"}\n' +
        '{"instruction":"Say hello.","input":"","output":"Bonjour"}\n' +
        '{"input":"1","output":"2"}\n',
    );
    const path = files.path("export.jsonl");
    await dataset.writeJSONL(path);
    expect(await readFile(path, "utf8")).toBe(dataset.toJSONL());
    expect((await Dataset.load(path)).examples).toEqual(dataset.examples);
  });

  it("builds the Gemini wire shape, folding the instruction into textInput", () => {
    expect(dataset.toGeminiExamples()).toEqual([
      { textInput: "Translate to French.\n\ncat", output: "chat" },
      { textInput: "Say hello.", output: "Bonjour" },
      { textInput: "1", output: "2" },
    ]);
    expect(toGeminiExamples(dataset)).toEqual(dataset.toGeminiExamples());
    expect(foldInstruction({ input: "x" })).toBe("x");
  });

  it("round-trips a Gemini-shaped file through toGeminiExamples", async () => {
    const path = await files.write("gemini.jsonl", toJsonl(geminiRecords(3)));
    const loaded = await Dataset.load(path);
    expect(loaded.toGeminiExamples()).toEqual(
      geminiRecords(3).map((r) => ({ textInput: r.text_input, output: r.output })),
    );
  });
});
