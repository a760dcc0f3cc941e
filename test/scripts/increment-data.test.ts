import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  generate,
  INCREMENT_SEED,
  KINDS,
  QUOTA,
  toJsonl,
  toWords,
} from "../../scripts/make-increment-data.js";
import { Dataset } from "../../src/core/dataset/index.js";

/** The number a row writes: digits, with commas, or in words (the inverse of toWords). */
function numberOf(text: string): number {
  if (/^-?[\d,]+$/.test(text)) return Number(text.replace(/,/g, ""));
  const words = text.split(" ");
  if (words[0] === "minus") return -numberOf(words.slice(1).join(" "));
  const small = (w: string) => {
    const ones = Array.from({ length: 20 }, (_, i) => toWords(i)).indexOf(w);
    return ones >= 0 ? ones : 10 * Array.from({ length: 10 }, (_, i) => toWords(i * 10)).indexOf(w);
  };
  let total = 0;
  let group = 0;
  for (const word of words) {
    if (word === "hundred") group *= 100;
    else if (word === "thousand" || word === "million") {
      total += group * (word === "thousand" ? 1_000 : 1_000_000);
      group = 0;
    } else group += small(word);
  }
  return total + group;
}

describe("the increment datasets", () => {
  it("are exactly what the committed generator writes", () => {
    const { train, heldout } = generate(INCREMENT_SEED);
    expect(readFileSync("examples/data/increment.jsonl", "utf8")).toBe(toJsonl(train));
    expect(readFileSync("examples/data/increment-heldout.jsonl", "utf8")).toBe(toJsonl(heldout));
  });

  it("hold ≥ 300 training and ≥ 100 held-out examples with no shared input", async () => {
    const train = await Dataset.load("examples/data/increment.jsonl");
    const heldout = await Dataset.load("examples/data/increment-heldout.jsonl");
    expect(train.size).toBeGreaterThanOrEqual(300);
    expect(heldout.size).toBeGreaterThanOrEqual(100);
    const inputs = new Set(train.examples.map((e) => e.input));
    expect(heldout.examples.filter((e) => inputs.has(e.input))).toEqual([]);
    expect(train.check("gemini")).toBeDefined();
  });

  it("covers every style of the seed", () => {
    const inputs = generate(INCREMENT_SEED).train.map((r) => r.text_input);
    expect(inputs.some((i) => /^\d+$/.test(i))).toBe(true);
    expect(inputs.some((i) => i.startsWith("-"))).toBe(true);
    expect(inputs.some((i) => /^\d{1,3}(,\d{3})+$/.test(i))).toBe(true);
    expect(inputs.some((i) => i.includes("million"))).toBe(true);
  });

  it("tags every row with its kind and holds every kind in equal numbers", () => {
    const { train, heldout } = generate(INCREMENT_SEED);
    for (const [rows, each] of [
      [train, QUOTA.train],
      [heldout, QUOTA.heldout],
    ] as const) {
      const counts = Object.fromEntries(KINDS.map((k) => [k, 0]));
      for (const row of rows) counts[row.kind] = (counts[row.kind] ?? 0) + 1;
      expect(counts).toEqual(Object.fromEntries(KINDS.map((k) => [k, each])));
    }
  });

  it("carries exactly in the carry kinds, in both sets, at every digit position", () => {
    const { train, heldout } = generate(INCREMENT_SEED);
    // A carry: a positive number ending in 9, or a negative one ending in 0 (or -1 → 0).
    const carries = (row: { text_input: string; output: string }) => {
      const n = numberOf(row.text_input);
      expect(numberOf(row.output)).toBe(n + 1);
      return n >= 0 ? n % 10 === 9 : n === -1 || n % 10 === 0;
    };
    for (const row of [...train, ...heldout]) {
      expect(carries(row), JSON.stringify(row)).toBe(row.kind.endsWith("-carry"));
    }
    // Trailing nines of every length: 9 → 10 up to 999,999 → 1,000,000.
    const nines = (s: string) => /9*$/.exec(s.replace(/,/g, ""))?.[0].length ?? 0;
    const lengths = new Set(
      [...train, ...heldout]
        .filter((r) => r.kind === "digits-carry")
        .map((r) => nines(r.text_input)),
    );
    expect([...lengths].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(heldout.filter((r) => r.kind.endsWith("-carry")).length).toBe(4 * QUOTA.heldout);
    // The landmark carries of the issue are taught.
    const inputs = new Set(train.map((r) => r.text_input));
    for (const input of ["9", "-1", "9,999", "nine", "nine hundred ninety nine", "999,999"]) {
      expect(inputs.has(input), input).toBe(true);
    }
  });

  it("writes a held-out set of another seed that shares no input with the training set", () => {
    const trained = generate(INCREMENT_SEED).train.map((r) => r.text_input);
    const other = generate(7, trained).heldout;
    expect(other).toHaveLength(KINDS.length * QUOTA.heldout);
    const seen = new Set(trained);
    expect(other.filter((r) => seen.has(r.text_input))).toEqual([]);
  });

  it("spells numbers the way the seed does", () => {
    expect(toWords(22)).toBe("twenty two");
    expect(toWords(201)).toBe("two hundred one");
    expect(toWords(100)).toBe("one hundred");
    expect(toWords(10_100_000)).toBe("ten million one hundred thousand");
    expect(toWords(999_999 + 1)).toBe("one million");
  });
});
