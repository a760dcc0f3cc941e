/**
 * Prefill and decode speed of tunekit's native core beside transformers on PyTorch (CPU),
 * on the same ~100M-parameter random Llama, the same prompt ids and the same thread count,
 * in one run. Goal: native ≥ 2× transformers on both.
 *
 *   npm run build:native && npx tsx bench/generate/generate.bench.ts \
 *     [promptTokens=128] [newTokens=64] [repeats=3] [threads=all cores]
 *
 * The model is written once (seeded, deterministic) to ~/.cache/tunekit/bench/. The
 * baseline needs `python3` with torch + transformers; without them it is skipped with a
 * message and only the native numbers are printed. A benchmark, not a test: compare
 * numbers only within one run. On a busy machine use fewer threads than cores: PyTorch's
 * OpenMP pool degrades sharply when oversubscribed, which would flatter the ratio.
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const promptTokens = Number(process.argv[2] ?? 128);
const newTokens = Number(process.argv[3] ?? 64);
const repeats = Number(process.argv[4] ?? 3);
const threads = Number(process.argv[5] ?? availableParallelism());
// candle/gemm read this once, when the first op runs; torch gets the same count.
process.env.RAYON_NUM_THREADS = String(threads);

const ROOT = join(import.meta.dirname, "..", "..");
const CONFIG = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 768,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_key_value_heads: 4,
  vocab_size: 32000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  torch_dtype: "float32",
};

/** mulberry32: small seeded PRNG so the weights are the same on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tensorShapes(): [string, number[]][] {
  const c = CONFIG;
  const d = c.hidden_size / c.num_attention_heads;
  const shapes: [string, number[]][] = [
    ["model.embed_tokens.weight", [c.vocab_size, c.hidden_size]],
  ];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    shapes.push(
      [`${p}.input_layernorm.weight`, [c.hidden_size]],
      [`${p}.self_attn.q_proj.weight`, [c.num_attention_heads * d, c.hidden_size]],
      [`${p}.self_attn.k_proj.weight`, [c.num_key_value_heads * d, c.hidden_size]],
      [`${p}.self_attn.v_proj.weight`, [c.num_key_value_heads * d, c.hidden_size]],
      [`${p}.self_attn.o_proj.weight`, [c.hidden_size, c.num_attention_heads * d]],
      [`${p}.post_attention_layernorm.weight`, [c.hidden_size]],
      [`${p}.mlp.gate_proj.weight`, [c.intermediate_size, c.hidden_size]],
      [`${p}.mlp.up_proj.weight`, [c.intermediate_size, c.hidden_size]],
      [`${p}.mlp.down_proj.weight`, [c.hidden_size, c.intermediate_size]],
    );
  }
  shapes.push(["model.norm.weight", [c.hidden_size]]);
  return shapes;
}

/** Writes config.json, model.safetensors (f32) and a tokenizer; reuses a complete copy. */
function ensureModel(): { dir: string; params: number } {
  const shapes = tensorShapes();
  const params = shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
  const dir = join(homedir(), ".cache", "tunekit", "bench", "llama-100m-v1");
  const weights = join(dir, "model.safetensors");
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const headerBytes = Buffer.from(JSON.stringify(header));
  const total = 8 + headerBytes.length + offset;
  if (existsSync(weights) && statSync(weights).size === total) return { dir, params };

  mkdirSync(dir, { recursive: true });
  console.log(`writing a ${(params / 1e6).toFixed(1)}M-parameter random Llama to ${dir} …`);
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(CONFIG, null, 2)}\n`);
  copyFileSync(
    join(ROOT, "test", "fixtures", "models", "llama-tied-gqa", "tokenizer.json"),
    join(dir, "tokenizer.json"),
  );
  const random = rng(1234);
  const fd = openSync(`${weights}.tmp`, "w");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  writeSync(fd, prefix);
  writeSync(fd, headerBytes);
  for (const [name, shape] of shapes) {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("norm.weight")) values.fill(1);
    else {
      // N(0, 0.02²) by Box–Muller, like transformers' default init.
      for (let i = 0; i < values.length; i++) {
        const u = Math.max(random(), 1e-12);
        values[i] = 0.02 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
      }
    }
    writeSync(fd, new Uint8Array(values.buffer));
  }
  closeSync(fd);
  // Rename last so an interrupted write is never mistaken for a complete model.
  spawnSync("mv", ["-f", `${weights}.tmp`, weights]);
  return { dir, params };
}

interface Timing {
  prefillS: number;
  decodeS: number;
  tokens: number[];
}

const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function native(dir: string, promptIds: number[]): Promise<Timing> {
  const { loadModel } = await import("../../src/local/index.js");
  const model = await loadModel(dir);
  const once = async (): Promise<Timing> => {
    const start = performance.now();
    let first = 0;
    const tokens: number[] = [];
    for await (const chunk of model.generateStream(promptIds, {
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
  await once(); // warm-up
  const runs: Timing[] = [];
  for (let i = 0; i < repeats; i++) runs.push(await once());
  return {
    prefillS: median(runs.map((r) => r.prefillS)),
    decodeS: median(runs.map((r) => r.decodeS)),
    tokens: runs[0]?.tokens ?? [],
  };
}

function baseline(dir: string, promptIds: number[]): Timing | string {
  const child = spawnSync(
    "python3",
    [
      join(import.meta.dirname, "baseline.py"),
      dir,
      "--prompt-ids",
      promptIds.join(","),
      "--new-tokens",
      String(newTokens),
      "--threads",
      String(threads),
      "--repeats",
      String(repeats),
    ],
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  if (child.error) return `baseline skipped: python3 not found (${child.error.message})`;
  if (child.status === 3) return child.stderr.trim();
  if (child.status !== 0)
    return `baseline failed (exit ${child.status}): ${child.stderr.trim().slice(-2000)}`;
  const out = JSON.parse(child.stdout.trim().split("\n").pop() ?? "{}") as {
    prefill_s: number;
    decode_s: number;
    tokens: number[];
    torch: string;
    transformers: string;
  };
  console.log(`baseline: torch ${out.torch}, transformers ${out.transformers}`);
  return { prefillS: out.prefill_s, decodeS: out.decode_s, tokens: out.tokens };
}

const { dir, params } = ensureModel();
const random = rng(99);
const promptIds = Array.from({ length: promptTokens }, () => 3 + Math.floor(random() * 31_000));
console.log(
  `model: random Llama ${(params / 1e6).toFixed(1)}M params (f32), prompt ${promptTokens} tokens, ` +
    `${newTokens} new tokens (greedy), ${threads} threads, median of ${repeats} after a warm-up`,
);

const ours = await native(dir, promptIds);
const theirs = baseline(dir, promptIds);
const rate = (tokens: number, s: number) => tokens / s;
const rows: [string, number, number | undefined][] = [
  [
    "prefill tok/s",
    rate(promptTokens, ours.prefillS),
    typeof theirs === "string" ? undefined : rate(promptTokens, theirs.prefillS),
  ],
  [
    "decode tok/s",
    rate(newTokens - 1, ours.decodeS),
    typeof theirs === "string" ? undefined : rate(newTokens - 1, theirs.decodeS),
  ],
];
console.log("\n| metric | tunekit native | transformers (PyTorch CPU) | ratio |");
console.log("|---|---|---|---|");
for (const [metric, a, b] of rows) {
  const ratio = b === undefined ? "n/a" : `${(a / b).toFixed(2)}×`;
  console.log(
    `| ${metric} | ${a.toFixed(1)} | ${b === undefined ? "skipped" : b.toFixed(1)} | ${ratio} |`,
  );
}
if (typeof theirs === "string") console.log(`\n${theirs}`);
else {
  let same = 0;
  while (same < ours.tokens.length && ours.tokens[same] === theirs.tokens[same]) same++;
  console.log(
    `\ngreedy tokens identical for the first ${same} of ${newTokens} (random weights: near-ties may diverge)`,
  );
}
