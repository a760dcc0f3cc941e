import { open } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { Dataset } from "../../../src/core/dataset/index.js";
import { formatDatasetIssue, InvalidOptionError } from "../../../src/core/errors.js";
import { catchInvalid, toCsv, useTempDir } from "./helpers.js";

const GiB = 1024 * 1024 * 1024;

describe("Dataset.load guards", () => {
  const files = useTempDir();

  /** A file of `size` bytes that takes no disk space: every byte reads as NUL. */
  async function sparse(name: string, size: number): Promise<string> {
    const path = files.path(name);
    const handle = await open(path, "w");
    await handle.truncate(size);
    await handle.close();
    return path;
  }

  describe("every csv-parse error is an InvalidDatasetError naming the row", () => {
    const cases: [code: string, text: string][] = [
      ["INVALID_OPENING_QUOTE", 'prompt,completion\na,b\nc x"y,d\n'],
      ["CSV_INVALID_CLOSING_QUOTE", 'prompt,completion\n"a"b,c\n'],
      ["CSV_QUOTE_NOT_CLOSED", 'prompt,completion\na,b\n"c,d\n'],
    ];
    for (const [code, text] of cases) {
      it(code, async () => {
        const path = await files.write(`${code}.csv`, text);
        const error = await catchInvalid(() => Dataset.load(path));
        expect(error.issues).toHaveLength(1);
        expect(error.issues[0]?.position?.kind).toBe("row");
        expect(error.issues[0]?.reason).toMatch(new RegExp(`^not valid CSV: .*\\(${code}\\)$`));
      });
    }

    it("CSV_MAX_RECORD_SIZE: an unclosed quote stops at maxRecordBytes", async () => {
      const text = `prompt,completion\na,"${"x\n".repeat(5000)}`;
      const path = await files.write("runaway-quote.csv", text);
      const error = await catchInvalid(() => Dataset.load(path, { maxRecordBytes: 1000 }));
      expect(error.issues[0]).toMatchObject({ position: { kind: "row", value: 2 } });
      expect(error.issues[0]?.reason).toMatch(/longer than 1000 bytes \(maxRecordBytes\)/);
    });
  });

  describe("size guards", () => {
    it("a .json file beyond what can be parsed whole is refused before it is read", async () => {
      // readFile would throw ERR_FS_FILE_TOO_LARGE (an untyped error) on a file over 2 GiB.
      const path = await sparse("huge.json", 3 * GiB);
      const error = await catchInvalid(() => Dataset.load(path, { maxFileBytes: 4 * GiB }));
      expect(error.issues[0]?.reason).toMatch(
        /a \.json dataset is parsed whole.*convert it to JSONL/,
      );
    });

    it("a file over maxFileBytes (default 1 GiB) is refused before it is read", async () => {
      const path = await sparse("huge.jsonl", 3 * GiB);
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues[0]?.reason).toMatch(
        /the file is 3 GiB, over the 1 GiB limit \(maxFileBytes\)/,
      );
      const small = await files.write(
        "small.jsonl",
        `${'{"input":"a","output":"b"}\n'.repeat(10)}`,
      );
      const tight = await catchInvalid(() => Dataset.load(small, { maxFileBytes: 100 }));
      expect(tight.issues[0]?.reason).toMatch(/over the 100 bytes limit/);
    });

    it("a JSONL line longer than maxRecordBytes stops reading there (default 16 MiB)", async () => {
      const good = JSON.stringify({ input: "a", output: "b" });
      const long = JSON.stringify({ input: "x".repeat(17 * 1024 * 1024), output: "b" });
      const path = await files.write("long-line.jsonl", `${good}\n${long}\n${good}\n`);
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues).toHaveLength(1);
      expect(formatDatasetIssue(error.issues[0]!)).toMatch(
        /^line 2: the line is longer than 16 MiB \(maxRecordBytes\); reading stopped here/,
      );
      const small = await catchInvalid(() => Dataset.load(path, { maxRecordBytes: 64 }));
      expect(small.issues[0]?.position).toEqual({ kind: "line", value: 2 });
    });

    it("a 1 GiB NUL-filled CSV fails at its first byte, not after reading it all", async () => {
      const path = await sparse("zeros.csv", GiB);
      const started = Date.now();
      const error = await catchInvalid(() => Dataset.load(path));
      expect(formatDatasetIssue(error.issues[0]!)).toMatch(
        /^line 1: a NUL byte at column 1: this looks like a binary file, or UTF-16/,
      );
      // Not a timing assertion on speed: only that it did not read the whole gigabyte.
      expect(Date.now() - started).toBeLessThan(20_000);
    });

    it("rejects bad limits and unknown encodings as options", async () => {
      const path = await files.write("ok.jsonl", '{"input":"a","output":"b"}\n');
      await expect(Dataset.load(path, { maxRecordBytes: 0 })).rejects.toThrowError(
        InvalidOptionError,
      );
      await expect(Dataset.load(path, { maxFileBytes: 1.5 })).rejects.toThrowError(
        InvalidOptionError,
      );
      await expect(Dataset.load(path, { encoding: "klingon" })).rejects.toThrowError(
        /unknown encoding "klingon"/,
      );
    });
  });

  describe("encodings", () => {
    // "café" and "naïve" as Excel's CSV export writes them in Western locales (Windows-1252).
    const latin1 = Buffer.concat([
      Buffer.from("prompt,completion\r\nsay it,caf"),
      Buffer.from([0xe9]),
      Buffer.from("\r\nagain,na"),
      Buffer.from([0xef]),
      Buffer.from("ve\r\n"),
    ]);

    it("invalid UTF-8 is an error with its line and column, not a silent U+FFFD", async () => {
      const path = await files.write("latin1.csv", latin1);
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues).toHaveLength(1);
      expect(formatDatasetIssue(error.issues[0]!)).toMatch(
        /^line 2: not valid UTF-8 at column 11 \(byte 0xE9\); .*encoding: 'windows-1252'/,
      );
      const jsonl = await files.write(
        "latin1.jsonl",
        Buffer.concat([
          Buffer.from('{"input":"ok","output":"ok"}\n{"input":"\u00e9t'),
          Buffer.from([0xe9]),
          Buffer.from('","output":"x"}\n'),
        ]),
      );
      const jsonlError = await catchInvalid(() => Dataset.load(jsonl));
      expect(formatDatasetIssue(jsonlError.issues[0]!)).toMatch(
        /^line 2: not valid UTF-8 at column 13 \(byte 0xE9\)/,
      );
    });

    it("the encoding option reads Windows-1252 (latin1) CSV and JSON", async () => {
      const path = await files.write("latin1-ok.csv", latin1);
      for (const encoding of ["windows-1252", "latin1"]) {
        const dataset = await Dataset.load(path, { encoding });
        expect(dataset.examples).toEqual([
          { input: "say it", output: "café" },
          { input: "again", output: "naïve" },
        ]);
      }
      const json = await files.write(
        "latin1.json",
        Buffer.from('[{"input":"\xe9","output":"\xe8"}]', "latin1"),
      );
      await expect(Dataset.load(json)).rejects.toThrowError(/not valid UTF-8 at column 12/);
      expect((await Dataset.load(json, { encoding: "latin1" })).examples).toEqual([
        { input: "é", output: "è" },
      ]);
    });

    it("UTF-16 needs its encoding; with it, BOM and line ends are handled", async () => {
      const text = toCsv(["prompt", "completion"], [["ça va", "très bien 😀"]]);
      const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
      const path = await files.write("utf16.csv", utf16);
      const error = await catchInvalid(() => Dataset.load(path));
      expect(error.issues[0]?.reason).toMatch(
        /UTF-16LE byte-order mark; read it with encoding 'utf-16le'/,
      );
      const dataset = await Dataset.load(path, { encoding: "utf-16le" });
      expect(dataset.examples).toEqual([{ input: "ça va", output: "très bien 😀" }]);
      const jsonl = await files.write(
        "utf16.jsonl",
        Buffer.from('{"input":"a","output":"b"}\r\n{"input":"c","output":"d"}\r\n', "utf16le"),
      );
      expect((await Dataset.load(jsonl, { encoding: "utf-16le" })).size).toBe(2);
      // Without a BOM, UTF-16 text read as UTF-8 shows up as NUL bytes.
      await expect(Dataset.load(jsonl)).rejects.toThrowError(/a NUL byte at column 2/);
    });

    it("a byte invalid in a multi-byte encoding is an error, not a replacement character", async () => {
      const path = await files.write(
        "bad-sjis.jsonl",
        Buffer.concat([
          Buffer.from('{"input":"'),
          Buffer.from([0x82]),
          Buffer.from('","output":"b"}\n'),
        ]),
      );
      const error = await catchInvalid(() => Dataset.load(path, { encoding: "shift_jis" }));
      expect(error.issues[0]?.reason).toMatch(/not valid shift_jis text/);
    });
  });

  it("a CSV header may name any column, __proto__ included", async () => {
    const path = await files.write("proto.csv", toCsv(["__proto__", "answer"], [["q", "a"]]));
    const dataset = await Dataset.load(path, { columns: { input: "__proto__", output: "answer" } });
    expect(dataset.examples).toEqual([{ input: "q", output: "a" }]);
  });
});
