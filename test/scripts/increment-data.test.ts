import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generate, INCREMENT_SEED, toJsonl, toWords } from "../../scripts/make-increment-data.js";
import { Dataset } from "../../src/core/dataset/index.js";

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

  it("spells numbers the way the seed does", () => {
    expect(toWords(22)).toBe("twenty two");
    expect(toWords(201)).toBe("two hundred one");
    expect(toWords(100)).toBe("one hundred");
    expect(toWords(10_100_000)).toBe("ten million one hundred thousand");
    expect(toWords(999_999 + 1)).toBe("one million");
  });
});
