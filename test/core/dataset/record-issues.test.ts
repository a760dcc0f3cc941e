import { describe, expect, it } from "vitest";
import { Dataset } from "../../../src/core/dataset/index.js";
import { formatDatasetIssue, InvalidOptionError } from "../../../src/core/errors.js";
import { catchInvalid, geminiRecords, toJsonl, useTempDir } from "./helpers.js";

describe("record validation collects every problem with its position, field and reason", () => {
  const files = useTempDir();

  it("reports empty output, non-string values, wrong types and unknown shapes together", async () => {
    const error = await catchInvalid(() =>
      Dataset.from([
        { text_input: "ok", output: "fine" },
        { text_input: "1", output: "" },
        { text_input: 3, output: "4" },
        { text_input: "5", output: null },
        "just a string",
        { question: "?", answer: "!" },
        { text_input: "7", output: "   " },
      ]),
    );
    expect(error.code).toBe("invalid_dataset");
    expect(error.source).toBe("array");
    expect(error.issues.map(formatDatasetIssue)).toEqual([
      'index 1, field "output": empty output',
      'index 2, field "text_input": input must be a string, got number',
      'index 3, field "output": output must be a string, got null',
      "index 4: expected an object, got string",
      expect.stringMatching(
        /^index 5: unknown shape \(keys: question, answer\); expected textInput/,
      ),
      'index 6, field "output": empty output',
    ]);
    expect(error.issues.every((issue) => issue.severity === "error")).toBe(true);
    expect(error.message).toContain("6 problems");
  });

  it("reports a missing output", () => {
    const error = Dataset.from.bind(Dataset, [{ prompt: "a" }]);
    expect(error).toThrowError(/field "completion": missing output/);
  });

  it("rejects an Alpaca record whose instruction and input are both empty", async () => {
    const error = await catchInvalid(() =>
      Dataset.from([{ instruction: "", input: "", output: "x" }]),
    );
    expect(error.issues[0]).toMatchObject({
      position: { kind: "index", value: 0 },
      field: "input",
      reason: expect.stringContaining("empty input"),
    });
  });

  it("returns nothing when any record is bad (no partial dataset)", async () => {
    const path = await files.write(
      "partly-bad.jsonl",
      toJsonl([...geminiRecords(30), { text_input: "x" }]),
    );
    await expect(Dataset.load(path)).rejects.toThrowError(
      /line 31, field "output": missing output/,
    );
  });

  describe("mixed shapes", () => {
    it("is an error that names the first record of each shape", async () => {
      const path = await files.write(
        "mixed.jsonl",
        toJsonl([
          { text_input: "1", output: "2" },
          { text_input: "3", output: "4" },
          { prompt: "5", completion: "6" },
          { prompt: "7", completion: "8" },
          { instruction: "9", output: "10" },
        ]),
      );
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues.map((issue) => issue.reason)).toEqual([
        "mixed shapes: line 1 is Gemini (textInput/text_input + output) but line 3 is prompt + completion; every record must have the same shape",
        "mixed shapes: line 1 is Gemini (textInput/text_input + output) but line 5 is Alpaca (instruction/input + output); every record must have the same shape",
      ]);
      expect(error.issues[0]?.position).toEqual({ kind: "line", value: 3 });
    });
  });

  describe("chat", () => {
    it("accepts multi-turn chat: earlier turns become the example's history", () => {
      const dataset = Dataset.from([
        {
          messages: [
            { role: "user", content: "Hi" },
            { role: "assistant", content: "Hello" },
            { role: "user", content: "How are you?" },
            { role: "model", content: "Fine" },
          ],
        },
      ]);
      expect(dataset.examples).toEqual([
        {
          history: [
            { role: "user", content: "Hi" },
            { role: "assistant", content: "Hello" },
          ],
          input: "How are you?",
          output: "Fine",
        },
      ]);
    });

    it("rejects malformed conversations with the turn's position: order, empty turns, endings", async () => {
      const turn = (role: string, content: string) => ({ role, content });
      const error = await catchInvalid(() =>
        Dataset.from([
          { messages: [turn("assistant", "a"), turn("user", "q"), turn("assistant", "a")] },
          { messages: [turn("user", "q"), turn("user", "q"), turn("assistant", "a")] },
          {
            messages: [
              turn("user", "q"),
              turn("assistant", "a"),
              turn("assistant", "b"),
              turn("user", "q"),
              turn("assistant", "c"),
            ],
          },
          { messages: [turn("user", "q"), turn("assistant", "a"), turn("user", "more?")] },
          {
            messages: [
              turn("user", " "),
              turn("assistant", "a"),
              turn("user", "q"),
              turn("assistant", "b"),
            ],
          },
          {
            messages: [
              turn("user", "q"),
              turn("assistant", ""),
              turn("user", "q"),
              turn("assistant", "b"),
            ],
          },
        ]),
      );
      expect(error.issues.map(formatDatasetIssue)).toEqual([
        'index 0, field "messages[0].role": the conversation must start with a user turn (after an optional system turn)',
        'index 1, field "messages[1].role": two user turns in a row (messages[0] and messages[1]); user and assistant turns must alternate',
        'index 2, field "messages[2].role": two assistant turns in a row (messages[1] and messages[2]); user and assistant turns must alternate',
        'index 3, field "messages[2]": the conversation ends with a user turn; it must end with the assistant turn to learn',
        'index 4, field "messages[0]": empty user turn',
        'index 5, field "messages[1]": empty output',
      ]);
    });

    it("reports unknown roles, misplaced system turns, missing turns and non-text parts", async () => {
      const error = await catchInvalid(() =>
        Dataset.from([
          {
            messages: [
              { role: "user", content: "a" },
              { role: "bot", content: "b" },
            ],
          },
          {
            messages: [
              { role: "user", content: "a" },
              { role: "system", content: "s" },
              { role: "assistant", content: "b" },
            ],
          },
          { messages: [{ role: "user", content: "only a question" }] },
          {
            messages: [
              { role: "user", parts: [{ inlineData: {} }] },
              { role: "model", content: "b" },
            ],
          },
          { messages: "not an array" },
          {
            messages: [
              { role: "user", content: "q" },
              { role: "assistant", content: "" },
            ],
          },
        ]),
      );
      expect(error.issues.map(formatDatasetIssue)).toEqual([
        'index 0, field "messages[1].role": unknown role "bot"; expected system, user, assistant or model',
        'index 0, field "messages": no assistant turn: missing output',
        'index 1, field "messages[1].role": a system turn is only allowed as the first turn',
        'index 2, field "messages": no assistant turn: missing output',
        'index 3, field "messages[0].parts[0]": only text parts are supported (expected an object with a string `text`)',
        'index 4, field "messages": messages must be an array of turns, got string',
        'index 5, field "messages[1]": empty output',
      ]);
    });
  });

  describe("column mapping", () => {
    it("reads the named fields and reports missing ones by their column name", async () => {
      const columns = { input: "question", output: "answer" };
      const dataset = Dataset.from([{ question: "q", answer: "a", extra: 1 }], { columns });
      expect(dataset.examples).toEqual([{ input: "q", output: "a" }]);
      expect(dataset.shape).toBe("columns");

      const error = await catchInvalid(() =>
        Dataset.from([{ question: "q" }, { answer: "a" }], { columns }),
      );
      expect(error.issues.map(formatDatasetIssue)).toEqual([
        'index 0, field "answer": missing output (no "answer" field)',
        'index 1, field "question": missing input (no "question" field)',
      ]);
    });

    it("rejects a mapping without input or output", () => {
      expect(() =>
        Dataset.from([{ q: "a" }], {
          columns: { input: "q" } as unknown as { input: string; output: string },
        }),
      ).toThrowError(InvalidOptionError);
    });
  });

  describe("the issue cap (maxIssues)", () => {
    it("stops at the cap and says the list was cut", async () => {
      const records = Array.from({ length: 50 }, () => ({ text_input: "x", output: "" }));
      const error = await catchInvalid(() => Dataset.from(records, { maxIssues: 10 }));
      const errors = error.issues.filter((issue) => issue.severity === "error");
      expect(errors).toHaveLength(10);
      expect(error.issues.at(-1)).toEqual({
        reason: "more problems were found but not listed: the list stops at maxIssues (10)",
        severity: "warning",
      });
      expect(error.message).toContain("10+ problems");
    });

    it("defaults to 100", async () => {
      const records = Array.from({ length: 500 }, () => ({ text_input: "x", output: "" }));
      const error = await catchInvalid(() => Dataset.from(records));
      expect(error.issues.filter((issue) => issue.severity === "error")).toHaveLength(100);
    });

    it("does not claim truncation when exactly maxIssues problems exist", async () => {
      const records = Array.from({ length: 3 }, () => ({ text_input: "x", output: "" }));
      const error = await catchInvalid(() => Dataset.from(records, { maxIssues: 3 }));
      expect(error.issues).toHaveLength(3);
      expect(error.message).toContain("3 problems");
    });

    it("must be a positive integer", () => {
      expect(() => Dataset.from(geminiRecords(1), { maxIssues: 0 })).toThrowError(
        InvalidOptionError,
      );
    });
  });

  it("rejects an empty array", async () => {
    const error = await catchInvalid(() => Dataset.from([]));
    expect(error.issues).toEqual([
      { reason: "no examples found: the dataset is empty", severity: "error" },
    ]);
  });

  it("loads an array of 100,000 examples", () => {
    const records = Array.from({ length: 100_000 }, (_, i) => ({
      textInput: `${i}`,
      output: `${i + 1}`,
    }));
    const dataset = Dataset.from(records);
    expect(dataset.size).toBe(100_000);
    expect(dataset.examples[99_999]).toEqual({ input: "99999", output: "100000" });
    expect(dataset.positionOf(99_999)).toEqual({ kind: "index", value: 99_999 });
  });
});
