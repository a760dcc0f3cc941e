/** `dataset.fieldOf`: scalar fields of the source records stay reachable (e.g. to slice results). */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Dataset } from "../../../src/core/dataset/dataset.js";

describe("Dataset.fieldOf", () => {
  it("keeps each record's string, number and boolean fields, not nested values", () => {
    const data = Dataset.from([
      { input: "9", output: "10", kind: "carry", digits: 1, hard: true, meta: { a: 1 } },
      { input: "41", output: "42" },
    ]);
    expect(data.fieldOf(0, "kind")).toBe("carry");
    expect(data.fieldOf(0, "digits")).toBe(1);
    expect(data.fieldOf(0, "hard")).toBe(true);
    expect(data.fieldOf(0, "meta")).toBeUndefined();
    expect(data.fieldOf(1, "kind")).toBeUndefined();
    expect(data.fieldOf(0, "toString")).toBeUndefined();
    expect(data.fieldOf(5, "kind")).toBeUndefined();
  });

  it("follows the examples through files and splits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tunekit-fields-"));
    const file = join(dir, "data.jsonl");
    writeFileSync(
      file,
      Array.from({ length: 10 }, (_, i) =>
        JSON.stringify({ text_input: String(i), output: String(i + 1), kind: `k${i}` }),
      ).join("\n"),
    );
    const data = await Dataset.load(file);
    expect(data.fieldOf(3, "kind")).toBe("k3");
    const { train, validation } = data.split({ validationFraction: 0.3, seed: 1 });
    for (const part of [train, validation]) {
      part.examples.forEach((example, i) => {
        expect(part.fieldOf(i, "kind")).toBe(`k${example.input}`);
      });
    }
  });
});
