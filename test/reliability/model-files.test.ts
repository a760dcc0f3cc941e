/**
 * Model-file fuzz, CI-sized (the full-size run is bench/reliability/model-files.ts): damaged
 * safetensors, config.json and GGUF files, each loaded (and when it loads, run) by the built
 * package in an isolated child process. None may crash the process or hang; none may fail
 * with an error that is not a tunekit error.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runIsolated, summarize } from "../../bench/reliability/isolated-runner.js";
import { writeModelCorpus } from "../../bench/reliability/model-files-corpus.js";

const CHILD = fileURLToPath(
  new URL("../../bench/reliability/model-files-child.ts", import.meta.url),
);
const FIXTURES = fileURLToPath(new URL("../fixtures", import.meta.url));

describe("model-file fuzz (CI-sized)", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tunekit-fuzz-models-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("120 damaged models: 0 crashes, 0 hangs, 0 untyped errors", { timeout: 300_000 }, async () => {
    const cases = await writeModelCorpus(dir, FIXTURES, 120, 11);
    const results = await runIsolated(CHILD, cases, { timeoutMs: 30_000, workDir: dir });
    const { counts, failures } = summarize(results);
    expect(failures).toEqual([]);
    expect(results).toHaveLength(120);
    expect(counts.typed).toBeGreaterThan(60);
  });
});
