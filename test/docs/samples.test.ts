/**
 * The docs runner's conventions (docs/contributing.md), checked without installing anything:
 * a doc whose block the runner could not classify fails here, in `npm test`, before the slow
 * packed-package suite (test/packed/docs.test.ts) runs its samples.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { conventionErrors, documentedFiles, samplesOf } from "../packed/samples.js";

const ROOT = join(import.meta.dirname, "..", "..");

function parse(markdown: string) {
  const dir = mkdtempSync(join(tmpdir(), "tunekit-samples-"));
  writeFileSync(join(dir, "doc.md"), markdown);
  return samplesOf(dir, join(dir, "doc.md"));
}

describe("docs samples", () => {
  it("README.md and every docs/ page follow the runner's conventions", () => {
    const files = documentedFiles(ROOT);
    expect(files.map((f) => f.slice(ROOT.length + 1))).toContain("docs/contributing.md");
    expect(files.flatMap((file) => conventionErrors(samplesOf(ROOT, file)))).toEqual([]);
  });

  it("reads the language, the attributes and the code of each block", () => {
    const samples = parse(
      [
        "```ts",
        "const a = 1;",
        "```",
        '```sh skip="needs a GPU"',
        "nvidia-smi",
        "```",
        "```ts continues",
        "console.log(a);",
        "```",
        "```jsonl file=data.jsonl",
        '{"input": "1", "output": "2"}',
        "```",
        "~~~text",
        "```ts",
        "~~~",
      ].join("\n"),
    );
    expect(
      samples.map(({ line, lang, kind, skip, continues, writesFile }) => ({
        line,
        lang,
        kind,
        skip,
        continues,
        writesFile,
      })),
    ).toEqual([
      {
        line: 1,
        lang: "ts",
        kind: "program",
        skip: undefined,
        continues: false,
        writesFile: undefined,
      },
      {
        line: 4,
        lang: "sh",
        kind: "shell",
        skip: "needs a GPU",
        continues: false,
        writesFile: undefined,
      },
      {
        line: 7,
        lang: "ts",
        kind: "program",
        skip: undefined,
        continues: true,
        writesFile: undefined,
      },
      {
        line: 10,
        lang: "jsonl",
        kind: "data",
        skip: undefined,
        continues: false,
        writesFile: "data.jsonl",
      },
      {
        line: 13,
        lang: "text",
        kind: "data",
        skip: undefined,
        continues: false,
        writesFile: undefined,
      },
    ]);
    expect(samples[0]?.code).toBe("const a = 1;\n");
  });

  it("rejects a block in another language without a reason, and a continuation of nothing", () => {
    const errors = conventionErrors(
      parse(["```python", "print(1)", "```", "```ts continues", "x", "```"].join("\n")),
    );
    expect(errors).toEqual([
      'doc.md:1: a `python` block is not run; mark it skip="why"',
      "doc.md:4: `continues` needs an earlier ts/js sample in the same file",
    ]);
  });
});
