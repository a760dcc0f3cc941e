/**
 * Dataset fuzz, full size: ≥ 500 damaged dataset files (see datasets-corpus.ts) plus the
 * large files that used to crash or stall the loader, each loaded by the built package in
 * an isolated child process. Reports untyped errors, crashes and hangs (all must be 0) and
 * how long the large files take to be refused.
 *
 *   npm run build && npx tsx bench/reliability/datasets.ts [files=600] [seed=1]
 *
 * Writes about 520 MB of temporary files (the 512-million-character line is real; the
 * gigabyte files are sparse) and removes them.
 */
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type DatasetCase, writeDatasetCorpus } from "./datasets-corpus.js";
import { reportEnd, runIsolated, summarize } from "./isolated-runner.js";

const CHILD = fileURLToPath(new URL("./datasets-child.ts", import.meta.url));
const GiB = 1024 ** 3;

/** A file of `size` zero bytes that takes no disk space. */
async function sparse(path: string, size: number): Promise<string> {
  const handle = await open(path, "w");
  await handle.truncate(size);
  await handle.close();
  return path;
}

/** One JSONL line of `chars` characters (a JSON string of "a"s), written in 64 MiB pieces. */
async function longLine(path: string, chars: number): Promise<string> {
  const handle = await open(path, "w");
  const piece = Buffer.alloc(64 * 1024 * 1024, "a");
  await handle.write('{"input": "');
  for (let left = chars - 30; left > 0; left -= piece.length) {
    await handle.write(left >= piece.length ? piece : piece.subarray(0, left));
  }
  await handle.write('", "output": "b"}\n');
  await handle.close();
  return path;
}

/** The large cases from the fault report, with how each must end. */
export async function largeCases(dir: string, full: boolean): Promise<DatasetCase[]> {
  const cases: DatasetCase[] = [
    {
      file: await sparse(join(dir, "zeros-1GiB.csv"), GiB),
      mutation: "1 GiB of NUL bytes (CSV)",
      options: {},
    },
    {
      file: await sparse(join(dir, "sparse-3GiB.json"), 3 * GiB),
      mutation: "3 GiB .json (readFile's limit is 2 GiB)",
      options: { maxFileBytes: 4 * GiB },
    },
    {
      file: await sparse(join(dir, "sparse-3GiB.jsonl"), 3 * GiB),
      mutation: "3 GiB .jsonl (over maxFileBytes)",
      options: {},
    },
  ];
  const chars = full ? 512 * 1024 * 1024 : 20 * 1024 * 1024;
  cases.push({
    file: await longLine(join(dir, "long-line.jsonl"), chars),
    mutation: `one JSONL line of ${chars.toLocaleString("en-US")} characters`,
    options: {},
  });
  const noBreaks = Buffer.alloc(full ? 64 * 1024 * 1024 : 4 * 1024 * 1024, "x");
  await writeFile(join(dir, "no-line-breaks.csv"), noBreaks);
  cases.push({
    file: join(dir, "no-line-breaks.csv"),
    mutation: "a CSV without line breaks",
    options: {},
  });
  return cases;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 600);
  const seed = Number(process.argv[3] ?? 1);
  const dir = await mkdtemp(join(tmpdir(), "tunekit-reliability-datasets-"));
  try {
    const started = Date.now();
    const cases = [
      ...(await writeDatasetCorpus(dir, count, seed)),
      ...(await largeCases(dir, true)),
    ];
    const results = await runIsolated(CHILD, cases, { timeoutMs: 60_000, workDir: dir });
    const { counts, failures } = summarize(results);
    console.log(
      `dataset fuzz: ${cases.length} files (${count} fuzzed, seed ${seed}, ${cases.length - count} large)`,
    );
    console.log(
      `  ok ${counts.ok} · typed errors ${counts.typed} · untyped ${counts.untyped} · crashes ${counts.crash} · hangs ${counts.hang}`,
    );
    const byMutation = new Map<string, { n: number; ok: number }>();
    for (const r of results) {
      const m = (cases[r.i] as DatasetCase).mutation;
      const entry = byMutation.get(m) ?? { n: 0, ok: 0 };
      entry.n++;
      if (r.outcome === "ok") entry.ok++;
      byMutation.set(m, entry);
    }
    console.log("  by mutation (files / loaded without error):");
    for (const [m, { n, ok }] of [...byMutation].sort((a, b) => b[1].n - a[1].n)) {
      console.log(`    ${m.padEnd(44)} ${String(n).padStart(4)} / ${ok}`);
    }
    console.log("  large files (time to the typed error):");
    for (const r of results.slice(count)) {
      const c = cases[r.i] as DatasetCase;
      // The first listed problem (the message's second line), on one line.
      const problem = (r.message ?? "").split("\n")[1]?.replace(/^\s*- /, "") ?? r.message ?? "";
      console.log(
        `    ${c.mutation.padEnd(44)} ${r.outcome.padEnd(7)} ${(r.ms ?? 0).toFixed(0).padStart(6)} ms  ${problem.slice(0, 110)}`,
      );
    }
    reportEnd(failures, (i) => (cases[i] as DatasetCase).mutation, started);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
