import { describe, expect, it } from "vitest";
import { Dataset } from "../../../src/core/dataset/index.js";
import { AbortedError, formatDatasetIssue, InvalidOptionError } from "../../../src/core/errors.js";
import { catchInvalid, geminiRecords, toCsv, toJsonl, useTempDir } from "./helpers.js";

const BOM = "\uFEFF";

describe("Dataset.load", () => {
  const files = useTempDir();

  describe("CSV (RFC 4180)", () => {
    it("handles a BOM, CRLF line ends and quoted fields holding newlines, commas and quotes", async () => {
      const text =
        `${BOM}question,answer\r\n` +
        `"Line one\r\nline two","Say ""hi"", then\nleave"\r\n` +
        `plain,"a, b"\r\n`;
      const path = await files.write("rfc4180.csv", text);
      const dataset = await Dataset.load(path, {
        columns: { input: "question", output: "answer" },
      });
      expect(dataset.examples).toEqual([
        { input: "Line one\r\nline two", output: 'Say "hi", then\nleave' },
        { input: "plain", output: "a, b" },
      ]);
      // One row per record, even when a record spans lines.
      expect(dataset.positionOf(1)).toEqual({ kind: "row", value: 3 });
    });

    it("detects the shape from the header (the BOM does not stick to the first column name)", async () => {
      const path = await files.write("bom-gemini.csv", `${BOM}text_input,output\n1,2\n3,4\n`);
      const dataset = await Dataset.load(path);
      expect(dataset.shape).toBe("gemini");
      expect(dataset.examples).toEqual([
        { input: "1", output: "2" },
        { input: "3", output: "4" },
      ]);
    });

    it("reports bad rows by row number, counting the header as row 1", async () => {
      const path = await files.write(
        "bad-rows.csv",
        toCsv(
          ["prompt", "completion"],
          [
            ["a", "b"],
            ["c", ""],
            ["d", "e", "extra"],
            ["f", "g"],
          ],
        ),
      );
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues.map(formatDatasetIssue)).toEqual([
        'row 3, field "completion": empty output',
        "row 4: the row has 3 fields but the header has 2",
      ]);
    });

    it("skips blank lines between records", async () => {
      const path = await files.write("blank-lines.csv", "prompt,completion\n\na,b\n\nc,d\n");
      const dataset = await Dataset.load(path);
      expect(dataset.size).toBe(2);
    });

    it("reports a mapped column missing from the header at row 1", async () => {
      const path = await files.write("no-answer.csv", "question,reply\nq,a\n");
      const error = await catchInvalid(() =>
        Dataset.load(path, { columns: { input: "question", output: "answer" } }),
      );
      expect(error.issues.map(formatDatasetIssue)).toEqual([
        'row 1, field "answer": column "answer" (from options.columns) is not in the header: question, reply',
      ]);
    });

    it("reports a syntax error such as an unclosed quote", async () => {
      const path = await files.write("unclosed.csv", 'prompt,completion\na,b\n"c,d\n');
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues[0]?.reason).toMatch(/^not valid CSV: /);
      expect(error.issues[0]?.position?.kind).toBe("row");
    });

    it("rejects a chat CSV whose messages cell is not JSON", async () => {
      const path = await files.write("chat-bad.csv", toCsv(["messages"], [["[not json"]]));
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues[0]).toMatchObject({
        position: { kind: "row", value: 2 },
        field: "messages",
        reason: expect.stringMatching(/^not valid JSON/),
      });
    });

    it("rejects an empty file and a header without rows", async () => {
      const empty = await files.write("empty.csv", "");
      expect((await catchInvalid(() => Dataset.load(empty))).issues[0]?.reason).toBe(
        "the file is empty: no header row and no examples",
      );
      const headerOnly = await files.write("header-only.csv", "text_input,output\r\n");
      expect((await catchInvalid(() => Dataset.load(headerOnly))).issues[0]?.reason).toBe(
        "no examples found: the dataset is empty",
      );
    });
  });

  describe("JSONL", () => {
    it("reports a broken line by its line number and keeps checking the rest", async () => {
      const text = [
        JSON.stringify({ text_input: "1", output: "2" }),
        JSON.stringify({ text_input: "3", output: "4" }),
        '{"text_input": "5", "output": ',
        JSON.stringify({ text_input: "7", output: "" }),
      ].join("\n");
      const path = await files.write("broken.jsonl", text);
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues).toHaveLength(2);
      expect(error.issues[0]).toMatchObject({
        position: { kind: "line", value: 3 },
        reason: expect.stringMatching(/^not valid JSON: /),
      });
      expect(formatDatasetIssue(error.issues[1]!)).toBe('line 4, field "output": empty output');
    });

    it("ignores blank lines but still counts them, so line numbers match an editor", async () => {
      const text = `\n${JSON.stringify({ prompt: "a", completion: "b" })}\n   \n\n${JSON.stringify({ prompt: "c", completion: "d" })}\n\n`;
      const path = await files.write("blank.jsonl", text);
      const dataset = await Dataset.load(path);
      expect(dataset.size).toBe(2);
      expect(dataset.positionOf(0)).toEqual({ kind: "line", value: 2 });
      expect(dataset.positionOf(1)).toEqual({ kind: "line", value: 5 });
    });

    it("handles a BOM and CRLF line ends", async () => {
      const text = `${BOM}${JSON.stringify({ text_input: "1", output: "2" })}\r\n${JSON.stringify({ text_input: "3", output: "4" })}\r\n`;
      const path = await files.write("bom-crlf.jsonl", text);
      const dataset = await Dataset.load(path);
      expect(dataset.examples).toEqual([
        { input: "1", output: "2" },
        { input: "3", output: "4" },
      ]);
    });

    it("rejects an empty file", async () => {
      const path = await files.write("empty.jsonl", "");
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues).toEqual([
        { reason: "no examples found: the dataset is empty", severity: "error" },
      ]);
      const blank = await files.write("blank-only.ndjson", "\n\n  \n");
      await expect(Dataset.load(blank)).rejects.toThrowError(/no examples found/);
    });

    it("loads 100,000 examples", async () => {
      const path = await files.write("large.jsonl", toJsonl(geminiRecords(100_000)));
      const dataset = await Dataset.load(path);
      expect(dataset.size).toBe(100_000);
      expect(dataset.positionOf(99_999)).toEqual({ kind: "line", value: 100_000 });
    });
  });

  describe("JSON", () => {
    it("reads an array, or an object holding the array under examples/data/records/rows", async () => {
      const records = geminiRecords(2);
      for (const body of [
        records,
        { examples: records },
        { data: records },
        { examples: { examples: records } },
      ]) {
        const path = await files.write("wrapped.json", JSON.stringify(body));
        const dataset = await Dataset.load(path);
        expect(dataset.examples).toEqual([
          { input: "0", output: "1" },
          { input: "1", output: "2" },
        ]);
      }
    });

    it("reports bad records by 0-based index", async () => {
      const path = await files.write(
        "bad.json",
        JSON.stringify([
          { prompt: "a", completion: "b" },
          { prompt: "c", completion: 1 },
        ]),
      );
      const error = await catchInvalid(() => Dataset.load(path));
      expect(formatDatasetIssue(error.issues[0]!)).toBe(
        'index 1, field "completion": output must be a string, got number',
      );
    });

    it("reports a syntax error with its line and column", async () => {
      const path = await files.write(
        "syntax.json",
        '[\n  {"prompt": "a", "completion": "b"},\n  {"prompt": }\n]',
      );
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues[0]?.reason).toMatch(/^not valid JSON/);
    });

    it("rejects an empty file and a document that holds no array", async () => {
      const empty = await files.write("empty.json", "");
      expect((await catchInvalid(() => Dataset.load(empty))).issues[0]?.reason).toBe(
        "the file is empty: no examples found",
      );
      const object = await files.write("object.json", '{"hello": "world"}');
      expect((await catchInvalid(() => Dataset.load(object))).issues[0]?.reason).toMatch(
        /^expected a JSON array of records/,
      );
      const emptyArray = await files.write("empty-array.json", "[]");
      await expect(Dataset.load(emptyArray)).rejects.toThrowError(/no examples found/);
    });
  });

  describe("paths and options", () => {
    it("rejects an unknown extension and a missing file with InvalidOptionError", async () => {
      await expect(Dataset.load(files.path("data.txt"))).rejects.toThrowError(InvalidOptionError);
      await expect(Dataset.load(files.path("missing.jsonl"))).rejects.toThrowError(
        /cannot read dataset file .*missing\.jsonl/,
      );
    });

    it("stops when the signal aborts", async () => {
      const path = await files.write("abort.jsonl", toJsonl(geminiRecords(10)));
      const controller = new AbortController();
      controller.abort(new Error("user pressed ctrl-c"));
      await expect(Dataset.load(path, { signal: controller.signal })).rejects.toThrowError(
        AbortedError,
      );

      const csv = await files.write("abort.csv", toCsv(["prompt", "completion"], [["a", "b"]]));
      await expect(Dataset.load(csv, { signal: controller.signal })).rejects.toThrowError(
        AbortedError,
      );
    });

    it("aborts a load already in progress", async () => {
      const path = await files.write("abort-late.jsonl", toJsonl(geminiRecords(50_000)));
      const controller = new AbortController();
      const loading = Dataset.load(path, { signal: controller.signal });
      setImmediate(() => controller.abort());
      await expect(loading).rejects.toThrowError(AbortedError);
    });
  });
});
