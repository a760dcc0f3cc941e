import { describe, expect, it } from "vitest";
import type { ColumnMapping } from "../../../src/core/dataset/index.js";
import { Dataset, type DatasetShape, type Example } from "../../../src/core/dataset/index.js";
import { toCsv, toJsonl, useTempDir } from "./helpers.js";

interface ShapeCase {
  name: string;
  shape: DatasetShape;
  records: Record<string, unknown>[];
  columns?: ColumnMapping;
  expected: Example[];
}

const cases: ShapeCase[] = [
  {
    name: "Gemini (text_input)",
    shape: "gemini",
    records: [
      { text_input: "1", output: "2" },
      { text_input: "twenty two", output: "twenty three" },
    ],
    expected: [
      { input: "1", output: "2" },
      { input: "twenty two", output: "twenty three" },
    ],
  },
  {
    name: "Gemini (textInput)",
    shape: "gemini",
    records: [
      { textInput: "1", output: "2" },
      { textInput: "8", output: "9" },
    ],
    expected: [
      { input: "1", output: "2" },
      { input: "8", output: "9" },
    ],
  },
  {
    name: "Alpaca (instruction becomes the instruction; input may be empty)",
    shape: "alpaca",
    records: [
      { instruction: "现在你要扮演甄嬛", input: "你是谁？", output: "家父是大理寺少卿甄远道。" },
      { instruction: "Say hello.", input: "", output: "Hello!" },
    ],
    expected: [
      { instruction: "现在你要扮演甄嬛", input: "你是谁？", output: "家父是大理寺少卿甄远道。" },
      { instruction: "Say hello.", input: "", output: "Hello!" },
    ],
  },
  {
    name: "prompt/completion",
    shape: "prompt-completion",
    records: [
      { prompt: "2+2=", completion: "4" },
      { prompt: "3+3=", completion: "6" },
    ],
    expected: [
      { input: "2+2=", output: "4" },
      { input: "3+3=", output: "6" },
    ],
  },
  {
    name: "single-turn chat (system → instruction; content string or Gemini parts)",
    shape: "chat",
    records: [
      {
        messages: [
          { role: "system", content: "Answer with a number." },
          { role: "user", content: "2+2?" },
          { role: "assistant", content: "4" },
        ],
      },
      {
        messages: [
          { role: "user", parts: [{ text: "Capital of " }, { text: "France?" }] },
          { role: "model", parts: [{ text: "Paris" }] },
        ],
      },
    ],
    expected: [
      { instruction: "Answer with a number.", input: "2+2?", output: "4" },
      { input: "Capital of France?", output: "Paris" },
    ],
  },
  {
    name: "explicit column mapping",
    shape: "columns",
    columns: { input: "question", output: "answer", instruction: "persona" },
    records: [
      { question: "Who are you?", answer: "A helper.", persona: "Be brief." },
      { question: "Why?", answer: "Because.", persona: "" },
    ],
    expected: [
      { instruction: "Be brief.", input: "Who are you?", output: "A helper." },
      { input: "Why?", output: "Because." },
    ],
  },
];

/** A CSV holds chat conversations as JSON text in its `messages` cell. */
function csvOf(records: Record<string, unknown>[]): string {
  const header = Object.keys(records[0] ?? {});
  const cell = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
  return toCsv(
    header,
    records.map((record) => header.map((key) => cell(record[key]))),
  );
}

describe("every shape from every file type", () => {
  const files = useTempDir();

  for (const testCase of cases) {
    const options = testCase.columns ? { columns: testCase.columns } : {};

    describe(testCase.name, () => {
      it("loads from an array (positions are 0-based indexes)", () => {
        const dataset = Dataset.from(testCase.records, options);
        expect(dataset.examples).toEqual(testCase.expected);
        expect(dataset.shape).toBe(testCase.shape);
        expect(dataset.source).toBe("array");
        expect(dataset.positionOf(1)).toEqual({ kind: "index", value: 1 });
      });

      it("loads from .json", async () => {
        const path = await files.write(
          `${testCase.shape}-${cases.indexOf(testCase)}.json`,
          JSON.stringify(testCase.records),
        );
        const dataset = await Dataset.load(path, options);
        expect(dataset.examples).toEqual(testCase.expected);
        expect(dataset.source).toBe(path);
        expect(dataset.positionOf(1)).toEqual({ kind: "index", value: 1 });
      });

      it("loads from .jsonl (positions are 1-based lines)", async () => {
        const path = await files.write(
          `${testCase.shape}-${cases.indexOf(testCase)}.jsonl`,
          toJsonl(testCase.records),
        );
        const dataset = await Dataset.load(path, options);
        expect(dataset.examples).toEqual(testCase.expected);
        expect(dataset.positionOf(1)).toEqual({ kind: "line", value: 2 });
      });

      it("loads from .csv (positions are rows; the header is row 1)", async () => {
        const path = await files.write(
          `${testCase.shape}-${cases.indexOf(testCase)}.csv`,
          csvOf(testCase.records),
        );
        const dataset = await Dataset.load(path, options);
        expect(dataset.examples).toEqual(testCase.expected);
        expect(dataset.positionOf(0)).toEqual({ kind: "row", value: 2 });
        expect(dataset.positionOf(1)).toEqual({ kind: "row", value: 3 });
      });
    });
  }
});

describe("shape details", () => {
  it("accepts tunekit's own { input, output, instruction? } (what toJSONL writes) as Alpaca", () => {
    const dataset = Dataset.from([
      { input: "a", output: "b" },
      { instruction: "i", output: "c" },
    ]);
    expect(dataset.shape).toBe("alpaca");
    expect(dataset.examples).toEqual([
      { input: "a", output: "b" },
      { instruction: "i", input: "", output: "c" },
    ]);
  });

  it("reads Vertex-style contents with a systemInstruction", () => {
    const dataset = Dataset.from([
      {
        systemInstruction: { role: "system", parts: [{ text: "Be terse." }] },
        contents: [
          { role: "user", parts: [{ text: "Hi" }] },
          { role: "model", parts: [{ text: "Hello" }] },
        ],
      },
    ]);
    expect(dataset.examples).toEqual([{ instruction: "Be terse.", input: "Hi", output: "Hello" }]);
  });

  it("ignores keys it does not know", () => {
    const dataset = Dataset.from([{ id: 7, text_input: "1", output: "2", tags: ["x"] }]);
    expect(dataset.examples).toEqual([{ input: "1", output: "2" }]);
  });

  it("iterates over its examples and reports its size", () => {
    const dataset = Dataset.from([
      { prompt: "a", completion: "b" },
      { prompt: "c", completion: "d" },
    ]);
    expect(dataset.size).toBe(2);
    expect([...dataset].map((example) => example.output)).toEqual(["b", "d"]);
  });
});
