import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DOMParser } from "@xmldom/xmldom";
import { describe, expect, it } from "vitest";
import { runTunekit } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "tunekit-cli-"));

describe("tunekit validate", () => {
  it("accepts a good file and prints its stats", async () => {
    const run = await runTunekit(["validate", "examples/data/increment.jsonl"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("400 examples");
    expect(run.stdout).toContain("ok: valid for gemini");
  });

  it("exits 3 on a bad file and lists each bad row with its line", async () => {
    const file = join(dir, "bad.jsonl");
    writeFileSync(
      file,
      [
        '{"text_input": "1", "output": "2"}',
        '{"text_input": "2", "output": ""}',
        "{not json",
        '{"text_input": "4", "output": 5}',
      ].join("\n"),
    );
    const run = await runTunekit(["validate", file]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^error: Invalid dataset/);
    expect(run.stderr).toMatch(/line 2.*output/);
    expect(run.stderr).toMatch(/line 3/);
    expect(run.stderr).toMatch(/line 4.*output/);
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose
  });

  it("exits 3 (not 1) on CSV syntax errors and invalid UTF-8; --encoding reads Windows-1252", async () => {
    const quote = join(dir, "quote.csv");
    writeFileSync(quote, 'prompt,completion\na,b\nc x"y,d\n');
    const run = await runTunekit(["validate", quote]);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/row 3: not valid CSV: .*\(INVALID_OPENING_QUOTE\)/);

    const latin1 = join(dir, "excel.csv");
    const rows = Array.from({ length: 25 }, (_, i) => `question ${i},caf\xe9 ${i}`);
    writeFileSync(latin1, Buffer.from(`text_input,output\r\n${rows.join("\r\n")}\r\n`, "latin1"));
    const strict = await runTunekit(["validate", latin1]);
    expect(strict.code).toBe(3);
    expect(strict.stderr).toMatch(/line 2: not valid UTF-8 at column 15 \(byte 0xE9\)/);
    const decoded = await runTunekit(["validate", latin1, "--encoding", "windows-1252"]);
    expect(decoded.stderr).toBe("");
    expect(decoded.code).toBe(0);
    expect(decoded.stdout).toContain("25 examples");
  });

  it("says why the seed's 15 examples are not enough for Gemini", async () => {
    const run = await runTunekit([
      "validate",
      "examples/data/increment-seed.jsonl",
      "--for",
      "gemini",
    ]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("at least 20");
  });

  it("prints parseable JSON with --json, for success and failure", async () => {
    const ok = await runTunekit(["--json", "validate", "examples/data/increment.jsonl"]);
    expect(JSON.parse(ok.stdout)).toMatchObject({ examples: 400, valid: true, target: "gemini" });
    const bad = await runTunekit(["--json", "validate", "examples/data/increment-seed.jsonl"]);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: "invalid_dataset" } });
  });

  it("exits 2 on a usage mistake", async () => {
    const run = await runTunekit(["validate"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("missing required argument");
  });
});

describe("tunekit plot", () => {
  it("writes an SVG of a metrics file's snapshots and prints advice", async () => {
    const metrics = join(dir, "metrics.jsonl");
    const events = Array.from({ length: 9 }, (_, i) => ({
      type: "snapshot",
      snapshot: {
        step: i + 1,
        epoch: Math.floor(i / 3) + 1,
        meanLoss: [3, 2.5, 2, 1, 0.9, 0.8, 0.85, 0.84, 0.84][i] as number,
        computeTime: "",
      },
    }));
    writeFileSync(metrics, `${events.map((e) => JSON.stringify(e)).join("\n")}\n`);
    const out = join(dir, "loss.svg");
    const run = await runTunekit(["plot", dir, "--out", out]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("9 points");
    expect(run.stdout).toContain("epochCount 2");
    const doc = new DOMParser().parseFromString(readFileSync(out, "utf8"), "image/svg+xml");
    expect(doc.getElementsByTagName("circle")).toHaveLength(9);
  });

  it("fails clearly when there is nothing to plot", async () => {
    const run = await runTunekit(["plot", join(dir, "nope")]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("Nothing to plot");
  });
});
