/**
 * Dataset fuzz, CI-sized (the full-size run is bench/reliability/datasets.ts): damaged
 * files of every format and the large files that used to crash or stall the loader, each
 * loaded by the built package (`npm run build` first) in an isolated child process.
 * Every file must load or fail with InvalidDatasetError / InvalidOptionError: no other
 * error, no crashed process, no hang.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { largeCases } from "../../bench/reliability/datasets.js";
import { writeDatasetCorpus } from "../../bench/reliability/datasets-corpus.js";
import { runIsolated, summarize } from "../../bench/reliability/isolated-runner.js";

const CHILD = fileURLToPath(new URL("../../bench/reliability/datasets-child.ts", import.meta.url));

describe("dataset fuzz (CI-sized)", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tunekit-fuzz-datasets-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("150 damaged files: 0 untyped errors, 0 crashes, 0 hangs", { timeout: 300_000 }, async () => {
    const cases = await writeDatasetCorpus(dir, 150, 7);
    const results = await runIsolated(CHILD, cases, { timeoutMs: 30_000, workDir: dir });
    const { counts, failures } = summarize(results);
    expect(failures).toEqual([]);
    expect(results).toHaveLength(150);
    // The corpus is not trivially broken or trivially fine.
    expect(counts.ok).toBeGreaterThan(10);
    expect(counts.typed).toBeGreaterThan(50);
  });

  it("gigabyte files and a 20-million-character line are refused quickly, typed", {
    timeout: 300_000,
  }, async () => {
    const cases = await largeCases(dir, false);
    const results = await runIsolated(CHILD, cases, { timeoutMs: 60_000, workDir: dir });
    expect(summarize(results).failures).toEqual([]);
    expect(results.map((r) => r.outcome)).toEqual(cases.map(() => "typed"));
    expect(results.map((r) => r.message)).toEqual([
      expect.stringMatching(/a NUL byte at column 1/),
      expect.stringMatching(/parsed whole.*convert it to JSONL/),
      expect.stringMatching(/over the 1 GiB limit \(maxFileBytes\)/),
      expect.stringMatching(/longer than 16 MiB \(maxRecordBytes\)/),
      expect.stringMatching(/Invalid dataset/),
    ]);
  });
});
