/**
 * Model-file fuzz, full size: ≥ 300 damaged safetensors files, config.json files and GGUF
 * files (see model-files-corpus.ts), each loaded — and when it loads, run — by the built
 * package in an isolated child process. Reports crashes and hangs (must be 0) and untyped
 * errors.
 *
 *   npm run build:native && npm run build && npx tsx bench/reliability/model-files.ts [files=450] [seed=1]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { reportEnd, runIsolated, summarize } from "./isolated-runner.js";
import { type ModelCase, writeModelCorpus } from "./model-files-corpus.js";

const CHILD = fileURLToPath(new URL("./model-files-child.ts", import.meta.url));
const FIXTURES = fileURLToPath(new URL("../../test/fixtures", import.meta.url));

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 450);
  const seed = Number(process.argv[3] ?? 1);
  const dir = await mkdtemp(join(tmpdir(), "tunekit-reliability-models-"));
  try {
    const started = Date.now();
    const cases = await writeModelCorpus(dir, FIXTURES, count, seed);
    const results = await runIsolated(CHILD, cases, { timeoutMs: 60_000, workDir: dir });
    const { failures } = summarize(results);
    console.log(`model-file fuzz: ${cases.length} files (seed ${seed})`);
    for (const format of ["safetensors", "config", "gguf"] as const) {
      const mine = results.filter((r) => (cases[r.i] as ModelCase).format === format);
      const { counts } = summarize(mine);
      console.log(
        `  ${format.padEnd(12)} ${String(mine.length).padStart(4)} files: loaded ${counts.ok} · typed errors ${counts.typed} · untyped ${counts.untyped} · crashes ${counts.crash} · hangs ${counts.hang}`,
      );
    }
    reportEnd(
      failures,
      (i) => `${(cases[i] as ModelCase).format}: ${(cases[i] as ModelCase).mutation}`,
      started,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
