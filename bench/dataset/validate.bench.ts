/**
 * Validating a 100,000-example JSONL file, side by side with bare `JSON.parse` of the
 * same lines read the same way (readline over a file stream). Goal: ratio ≤ 1.5×.
 *
 *   npx tsx bench/dataset/validate.bench.ts [examples=100000] [repetitions=11]
 *
 * Two files: "varied" (20–200-character inputs, some non-ASCII; 19 MB, so the gemini
 * profile rejects its payload from a cheap lower bound) and "short" (increment-style
 * pairs under 4 MB, so the payload is measured exactly by serialising it).
 * A benchmark, not a test: numbers depend on the machine; compare only within one run.
 */
import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { Dataset } from "../../src/core/dataset/index.js";

const exampleCount = Number(process.argv[2] ?? 100_000);
const repetitions = Number(process.argv[3] ?? 11);

/** Deterministic pseudo-random text of `length` characters, a few of them non-ASCII. */
function text(seed: number, length: number): string {
  const words = ["tune", "model", "input", "output", "λ", "data", "example", "café", "😀", "seed"];
  let out = "";
  let state = seed;
  while (out.length < length) {
    state = (state * 1103515245 + 12345) >>> 0;
    out += `${words[state % words.length]} `;
  }
  return out.slice(0, length);
}

const scenarios: { name: string; record(i: number): unknown }[] = [
  {
    name: "varied",
    record: (i) => ({ text_input: text(i, 20 + (i % 180)), output: text(i + 7, 5 + (i % 60)) }),
  },
  { name: "short", record: (i) => ({ text_input: `${i}`, output: `${i + 1}` }) },
];

async function writeDataset(path: string, record: (i: number) => unknown): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < exampleCount; i++) lines.push(JSON.stringify(record(i)));
  await writeFile(path, `${lines.join("\n")}\n`);
}

/**
 * (a) The baseline: read lines the way the loader does and `JSON.parse` each, keeping the
 * records (as any loader must). (a0) parses and drops them, which spares the garbage
 * collector the work of keeping 100,000 records alive; shown for reference.
 */
async function bareParse(path: string, keep: boolean): Promise<number> {
  const lines = createInterface({
    input: createReadStream(path, { encoding: "utf8" }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const records: unknown[] = [];
  let count = 0;
  for await (const line of lines) {
    if (line.length === 0) continue;
    const record: unknown = JSON.parse(line);
    if (keep) records.push(record);
    else if (record !== null) count++;
  }
  return count + records.length;
}

/** (b) Load (detect, normalise, check every record) and apply the gemini profile. */
async function loadAndValidate(path: string): Promise<number> {
  const dataset = await Dataset.load(path);
  const result = dataset.validate("gemini");
  return dataset.size + result.issues.length;
}

async function time(run: () => Promise<number>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const directory = await mkdtemp(join(tmpdir(), "tunekit-bench-"));
try {
  console.log(
    `${exampleCount.toLocaleString("en-US")} examples per file, ${repetitions} repetitions, ` +
      `Node ${process.version}`,
  );
  for (const scenario of scenarios) {
    const path = join(directory, `${scenario.name}.jsonl`);
    await writeDataset(path, scenario.record);
    const { size } = await stat(path);

    // Warm up every path (JIT, file cache).
    await bareParse(path, true);
    await bareParse(path, false);
    await loadAndValidate(path);

    const kept: number[] = [];
    const dropped: number[] = [];
    const validated: number[] = [];
    for (let i = 0; i < repetitions; i++) {
      // Interleave so drift (other load, GC) hits every side alike.
      kept.push(await time(() => bareParse(path, true)));
      dropped.push(await time(() => bareParse(path, false)));
      validated.push(await time(() => loadAndValidate(path)));
    }

    const baseline = median(kept);
    const row = (run: string, times: readonly number[]) => ({
      run,
      "median ms": Number(median(times).toFixed(1)),
      "min ms": Number(Math.min(...times).toFixed(1)),
      "max ms": Number(Math.max(...times).toFixed(1)),
      "÷ (a)": Number((median(times) / baseline).toFixed(2)),
    });
    const result = (await Dataset.load(path)).validate("gemini");
    console.log(`\n"${scenario.name}": ${(size / 1e6).toFixed(1)} MB of JSONL`);
    console.table([
      row("(a) readline + JSON.parse, records kept", kept),
      row("(a0) readline + JSON.parse, records dropped", dropped),
      row("(b) Dataset.load + validate(gemini)", validated),
    ]);
    console.log(
      `ratio (b)/(a): ${(median(validated) / baseline).toFixed(2)}× (goal ≤ 1.5×); ` +
        `(b)/(a0): ${(median(validated) / median(dropped)).toFixed(2)}×`,
    );
    console.log(
      `gemini profile: ${result.valid ? "valid" : "invalid"}; ` +
        (result.issues.map((issue) => issue.reason).join("; ") || "no issues"),
    );
  }
} finally {
  await rm(directory, { recursive: true, force: true });
}
