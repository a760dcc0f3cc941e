import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  createGeminiProfile,
  Dataset,
  type Example,
  GEMINI_LIMITS,
  geminiPayloadBytes,
  type LimitProfile,
  mulberry32,
  toGeminiExamples,
} from "../../../src/core/dataset/index.js";
import {
  formatDatasetIssue,
  InvalidDatasetError,
  InvalidOptionError,
} from "../../../src/core/errors.js";
import { catchInvalid } from "./helpers.js";

const SEED = fileURLToPath(new URL("../../../examples/data/increment-seed.jsonl", import.meta.url));

/** `count` small valid examples, with `overrides` applied to the first one. */
function examples(count: number, first: Partial<Example> = {}): Example[] {
  return Array.from({ length: count }, (_, i) => ({
    input: `${i}`,
    output: `${i + 1}`,
    ...(i === 0 ? first : {}),
  }));
}

const errorsOf = (records: Example[]) =>
  Dataset.from(records).validate("gemini").errors.map(formatDatasetIssue);

describe("the gemini profile", () => {
  describe("the seed file", () => {
    it("loads as 15 examples and is rejected: at least 20 are needed", async () => {
      const dataset = await Dataset.load(SEED);
      expect(dataset.size).toBe(15);
      expect(dataset.examples[0]).toEqual({ input: "1", output: "2" });

      const error = await catchInvalid(() => dataset.check("gemini"));
      expect(error).toBeInstanceOf(InvalidDatasetError);
      expect(error.message).toContain("at least 20 examples");
      expect(error.message).toContain("this dataset has 15");
      expect(error.source).toBe(SEED);
    });
  });

  describe("example count", () => {
    it("rejects 19 examples and accepts 20 with a warning (the docs recommend 100–500)", () => {
      expect(errorsOf(examples(19))).toEqual([
        "too few examples: Gemini tuning needs at least 20 examples, this dataset has 19",
      ]);
      const warnings = Dataset.from(examples(20)).check("gemini");
      expect(warnings.map((w) => w.reason)).toEqual([
        "only 20 examples: Gemini tuning accepts 20 or more, but the docs recommend 100–500 for good results",
      ]);
    });

    it("warns at 99 and is silent at 100", () => {
      expect(Dataset.from(examples(99)).check("gemini")).toHaveLength(1);
      expect(Dataset.from(examples(100)).check("gemini")).toEqual([]);
    });
  });

  describe("input ≤ 40,000 characters, counted in Unicode code points", () => {
    it("accepts exactly 40,000 and rejects 40,001", () => {
      expect(errorsOf(examples(20, { input: "a".repeat(40_000) }))).toEqual([]);
      expect(errorsOf(examples(20, { input: "a".repeat(40_001) }))).toEqual([
        'index 0, field "input": input is 40,001 characters (Unicode code points); Gemini accepts at most 40,000',
      ]);
    });

    it("counts an astral-plane character (two UTF-16 units) as one", () => {
      expect(errorsOf(examples(20, { input: "😀".repeat(40_000) }))).toEqual([]);
      expect(errorsOf(examples(20, { input: "😀".repeat(40_001) }))).toEqual([
        'index 0, field "input": input is 40,001 characters (Unicode code points); Gemini accepts at most 40,000',
      ]);
    });

    it("measures the textInput sent: instruction + blank line + input", () => {
      const at = { instruction: "i".repeat(20_000), input: "b".repeat(19_998) };
      expect(errorsOf(examples(20, at))).toEqual([]);
      expect(errorsOf(examples(20, { ...at, input: "b".repeat(19_999) }))).toEqual([
        'index 0, field "input": input is 40,001 characters (Unicode code points, instruction included); Gemini accepts at most 40,000',
      ]);
    });
  });

  describe("output ≤ 5,000 characters, counted in Unicode code points", () => {
    it("accepts exactly 5,000 and rejects 5,001", () => {
      expect(errorsOf(examples(20, { output: "o".repeat(5_000) }))).toEqual([]);
      expect(errorsOf(examples(20, { output: "o".repeat(5_001) }))).toEqual([
        'index 0, field "output": output is 5,001 characters (Unicode code points); Gemini accepts at most 5,000',
      ]);
    });

    it('accepts "😀" × 5,000 and rejects "😀" × 5,001', () => {
      expect(errorsOf(examples(20, { output: "😀".repeat(5_000) }))).toEqual([]);
      expect(errorsOf(examples(20, { output: "😀".repeat(5_001) }))).toEqual([
        'index 0, field "output": output is 5,001 characters (Unicode code points); Gemini accepts at most 5,000',
      ]);
    });

    it("positions limit problems in the source file", async () => {
      const records = examples(25).map((e) => ({ text_input: e.input, output: e.output }));
      records[3] = { text_input: "x", output: "o".repeat(6_000) };
      const dataset = Dataset.from(records);
      expect(dataset.validate("gemini").errors[0]?.position).toEqual({ kind: "index", value: 3 });
    });
  });

  describe("inline payload ≤ 4,000,000 bytes, measured on the JSON sent", () => {
    /** 100 examples whose serialised `{textInput, output}` array is exactly `bytes` long. */
    function payloadOf(bytes: number): Example[] {
      const records = Array.from({ length: 100 }, () => ({
        input: "a".repeat(39_000),
        output: "o",
      }));
      let missing = bytes - geminiPayloadBytes(records);
      for (const record of records) {
        const add = Math.min(missing, 1_000);
        record.input += "a".repeat(add);
        missing -= add;
      }
      expect(geminiPayloadBytes(records)).toBe(bytes);
      return records;
    }

    it("accepts exactly 4,000,000 bytes and rejects 4,000,001", () => {
      expect(GEMINI_LIMITS.maxPayloadBytes).toBe(4_000_000);
      expect(errorsOf(payloadOf(4_000_000))).toEqual([]);
      expect(errorsOf(payloadOf(4_000_001))).toEqual([
        "the inline training data is at least 4,000,001 bytes as sent; Gemini accepts at most 4,000,000 bytes (4 MB): use fewer or shorter examples",
      ]);
    });

    it("counts UTF-8 bytes and JSON escapes, not characters", () => {
      // Each input: 10,000 × (2-byte "é" + escaped quote \" = 4 bytes) = 40,000 bytes in 20,000
      // characters. 100 × (40,000 + 29 bytes of JSON around it) + 99 commas + 2 brackets.
      const records = Array.from({ length: 100 }, () => ({
        input: 'é"'.repeat(10_000),
        output: "o",
      }));
      expect(errorsOf(records)).toEqual([
        "the inline training data is 4,003,001 bytes as sent; Gemini accepts at most 4,000,000 bytes (4 MB): use fewer or shorter examples",
      ]);
    });

    it("is the byte length of JSON.stringify(toGeminiExamples()) for any text", () => {
      const tricky: Example[] = [
        {
          input: 'quote " backslash \\ newline \n tab \t nul \u0000',
          output: "lone \ud800 surrogate 😀 é",
        },
        { instruction: "Be brief.", input: "", output: "ok" },
      ];
      const wire = Dataset.from(tricky).toGeminiExamples();
      expect(geminiPayloadBytes(tricky)).toBe(Buffer.byteLength(JSON.stringify(wire), "utf8"));

      // Random UTF-16 units from every range that serialises differently.
      const random = mulberry32(1);
      const pick = [
        0x00, 0x08, 0x1f, 0x22, 0x41, 0x5c, 0x7f, 0xe9, 0x7ff, 0x800, 0xd83d, 0xde00, 0xffff,
      ];
      const randomText = () =>
        String.fromCharCode(
          ...Array.from({ length: 1 + Math.floor(random() * 20) }, () => {
            const base = pick[Math.floor(random() * pick.length)] as number;
            return base + (random() < 0.5 ? 0 : 1) * (base < 0xffff ? 1 : 0);
          }),
        );
      const fuzz: Example[] = Array.from({ length: 2_000 }, (_, i) => ({
        input: randomText(),
        output: randomText(),
        ...(i % 3 === 0 ? { instruction: randomText() } : {}),
      }));
      expect(geminiPayloadBytes(fuzz)).toBe(
        Buffer.byteLength(JSON.stringify(toGeminiExamples(fuzz)), "utf8"),
      );
      expect(geminiPayloadBytes([])).toBe(2);
    });
  });

  it("can be tuned with createGeminiProfile", () => {
    const strict = createGeminiProfile({ maxOutputChars: 1, minExamples: 1 });
    const issues = Dataset.from([{ input: "a", output: "bc" }]).validate(strict).errors;
    expect(issues.map(formatDatasetIssue)).toEqual([
      'index 0, field "output": output is 2 characters (Unicode code points); Gemini accepts at most 1',
    ]);
    expect(() => createGeminiProfile({ maxInputChars: -1 })).toThrowError(InvalidOptionError);
  });

  it("caps the listed problems at maxIssues", () => {
    const records = examples(30).map((e) => ({ ...e, output: "o".repeat(5_001) }));
    const result = Dataset.from(records).validate("gemini", { maxIssues: 5 });
    expect(result.errors).toHaveLength(5);
    expect(result.truncated).toBe(true);
    expect(result.warnings.at(-1)?.reason).toMatch(/stops at maxIssues \(5\)/);
  });
});

describe("validate and check", () => {
  it("validate never throws for bad data; check throws with every issue", async () => {
    const dataset = Dataset.from(examples(3, { output: "o".repeat(5_001) }));
    const result = dataset.validate();
    expect(result).toMatchObject({ profile: "gemini", valid: false, truncated: false });
    expect(result.errors).toHaveLength(2);
    const error = await catchInvalid(() => dataset.check());
    expect(error.issues).toEqual(result.issues);
  });

  it("accepts any LimitProfile object (the extension point for the local profile)", async () => {
    const noQuestions: LimitProfile = {
      name: "no-questions",
      validate(list, context) {
        list.forEach((example, i) => {
          if (example.input.endsWith("?")) context.example(i, "input", "no questions please");
          if (example.output.length > 3) context.example(i, "output", "long answer", "warning");
        });
        context.dataset("checked", "warning");
      },
    };
    const dataset = Dataset.from([
      { text_input: "why?", output: "because" },
      { text_input: "ok", output: "fine" },
    ]);
    const result = dataset.validate(noQuestions);
    expect(result.profile).toBe("no-questions");
    expect(result.errors.map(formatDatasetIssue)).toEqual([
      'index 0, field "input": no questions please',
    ]);
    expect(result.warnings).toHaveLength(3);
    await expect(catchInvalid(() => dataset.check(noQuestions))).resolves.toBeInstanceOf(
      InvalidDatasetError,
    );
  });

  it("rejects an unknown profile name", () => {
    expect(() => Dataset.from(examples(1)).validate("vertex" as "gemini")).toThrowError(
      InvalidOptionError,
    );
  });
});
