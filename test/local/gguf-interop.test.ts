/**
 * GGUF export interop with llama.cpp itself (node-llama-cpp's prebuilt CPU binary, a dev
 * dependency): tunekit converts the demo model to a GGUF base, LoRA-tunes it on the increment
 * task and exports the adapter to GGUF; llama.cpp, loading those files, must compute the same
 * next-token distributions as tunekit and continue the tuned prompts greedily with the same
 * tokens. Offline, about 5 s; needs `npm run build:native`.
 *
 * The distributions are the sharp check: without the llama q/k row permutation of `lora_b`
 * they differ by up to 0.6, while the greedy answers can still agree.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import {
  exportGgufModel,
  type InferencePrompt,
  inferencePrompt,
  type LocalModel,
  type LocalTunedModel,
  LocalTuner,
  loadModel,
  tokenizerFromModel,
} from "../../src/local/index.js";

const REPO = join(import.meta.dirname, "..", "..");
const DEMO = join(REPO, "models", "demo-counting");
const DATA = join(REPO, "examples", "data", "increment.jsonl");
const INPUTS = ["41", "1,999", "twenty two", "five hundred eleven", "98"];
const MAX_NEW_TOKENS = 8;
/**
 * Largest difference allowed between two next-token probabilities. Measured: at most 4e-4
 * (llama.cpp's CPU kernels and candle's differ around the third decimal of the logits; an f32
 * KV cache changes nothing). Exporting `lora_b` without llama's q/k row permutation moves
 * them by up to 0.6.
 */
const PROB_TOLERANCE = 1e-3;

const root = mkdtempSync(join(tmpdir(), "tunekit-gguf-interop-"));
const adapterFile = join(root, "increment-lora.gguf");
let llama: Llama;
let baseGguf: LlamaModel;
let tuned: LocalTunedModel;
let tunekitTuned: LocalModel;
let tunekitBase: LocalModel;
let prompts: InferencePrompt[];

beforeAll(async () => {
  const baseFile = join(root, "demo-counting.gguf");
  await exportGgufModel(DEMO, baseFile);
  const job = await new LocalTuner().tune({
    baseModel: DEMO,
    dataset: await Dataset.load(DATA),
    // The CLI test's recipe, under which the demo model answers "41" with "42" (~4 s).
    hyperparameters: { epochCount: 2, batchSize: 8, learningRate: 1e-3 },
    local: { outputDir: join(root, "run") },
  });
  tuned = (await job.wait()) as LocalTunedModel;
  await tuned.exportGguf(adapterFile);
  tunekitTuned = await tuned.model();
  tunekitBase = await loadModel(DEMO);
  prompts = INPUTS.map((input) =>
    inferencePrompt(tokenizerFromModel(tunekitTuned), tuned.template, input),
  );
  // The prebuilt CPU binary only: never download or compile llama.cpp in a test.
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  baseGguf = await llama.loadModel({ modelPath: baseFile, gpuLayers: 0 });
}, 120_000);

afterAll(async () => {
  await baseGguf?.dispose();
  await llama?.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** Runs `work` in a fresh llama.cpp context on the GGUF base, with the adapter if given. */
async function withContext<T>(
  lora: string | undefined,
  work: (context: Awaited<ReturnType<LlamaModel["createContext"]>>) => Promise<T>,
): Promise<T> {
  const context = await baseGguf.createContext({
    contextSize: 256,
    // llama.cpp's default thread count follows the host's cores, not this process's CPU
    // quota; oversubscribed, its spin-waiting threads make a token take ~1 s instead of ~1 ms.
    threads: 1,
    ...(lora === undefined ? {} : { lora: { adapters: [{ filePath: lora, scale: 1 }] } }),
  });
  try {
    return await work(context);
  } finally {
    await context.dispose();
  }
}

/**
 * llama.cpp's next-token distribution after each prompt (temperature 1 and no truncation, so
 * the probabilities are the softmax of its logits), dense over the vocabulary.
 */
function llamaCppNextTokenProbs(lora: string | undefined): Promise<Float64Array[]> {
  return withContext(lora, async (context) => {
    const out: Float64Array[] = [];
    for (const prompt of prompts) {
      const sequence = context.getSequence();
      const options = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1, yieldEogToken: true };
      const step = sequence.evaluateWithMetadata(
        prompt.promptIds as never,
        { probabilities: true },
        options,
      );
      const first = await step.next();
      await step.return();
      if (first.done) throw new Error("llama.cpp produced no token");
      const probs = new Float64Array(tunekitBase.config.vocabSize);
      for (const [token, p] of first.value.probabilities) probs[token as number] = p;
      out.push(probs);
      sequence.dispose();
    }
    return out;
  });
}

/** llama.cpp's greedy continuation of each prompt, stopping at an end token. */
function llamaCppGreedy(lora: string | undefined): Promise<number[][]> {
  return withContext(lora, async (context) => {
    const out: number[][] = [];
    for (const prompt of prompts) {
      const sequence = context.getSequence();
      const ids: number[] = [];
      const options = { temperature: 0, yieldEogToken: true };
      for await (const token of sequence.evaluate(prompt.promptIds as never, options)) {
        if (prompt.eosTokenIds.includes(token as number) || ids.length >= MAX_NEW_TOKENS) break;
        ids.push(token as number);
      }
      out.push(ids);
      sequence.dispose();
    }
    return out;
  });
}

/** tunekit's next-token distribution after each prompt. */
async function tunekitNextTokenProbs(model: LocalModel): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (const prompt of prompts) {
    const logits = await model.logits(prompt.promptIds);
    const row = logits.row(logits.sequenceLength - 1);
    const max = Math.max(...row);
    const exp = Float64Array.from(row, (v) => Math.exp(v - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    out.push(exp.map((v) => v / sum));
  }
  return out;
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
}

describe("GGUF export → llama.cpp", () => {
  it("the exported base tokenizes and predicts like tunekit's model", async () => {
    const bos = baseGguf.tokens.bos;
    expect(bos).toBe(1);
    for (const p of prompts) {
      // The smollm pre-tokenizer splits like tokenizer.json's Digits + ByteLevel.
      expect([bos, ...baseGguf.tokenize(p.text, true, "trimLeadingSpace")]).toEqual(p.promptIds);
    }
    const ours = await tunekitNextTokenProbs(tunekitBase);
    const theirs = await llamaCppNextTokenProbs(undefined);
    ours.forEach((probs, i) => {
      expect(maxAbsDiff(probs, theirs[i] as Float64Array), INPUTS[i]).toBeLessThan(PROB_TOLERANCE);
    });
  });

  it("with the exported adapter, llama.cpp predicts and answers exactly like tunekit", async () => {
    const ours = await tunekitNextTokenProbs(tunekitTuned);
    const theirs = await llamaCppNextTokenProbs(adapterFile);
    ours.forEach((probs, i) => {
      expect(maxAbsDiff(probs, theirs[i] as Float64Array), INPUTS[i]).toBeLessThan(PROB_TOLERANCE);
    });

    const expected: number[][] = [];
    for (const p of prompts) {
      const result = await tunekitTuned.generate(p.promptIds, {
        maxNewTokens: MAX_NEW_TOKENS,
        eosTokenIds: p.eosTokenIds,
      });
      expected.push(result.tokenIds);
    }
    const withAdapter = await llamaCppGreedy(adapterFile);
    expect(withAdapter).toEqual(expected);
    // The doc example: the tuned demo answers "41" with "42", in llama.cpp too.
    expect(await tuned.generate("41")).toBe("42");
    expect(tunekitTuned.detokenize(withAdapter[0] ?? []).trim()).toBe("42");

    // The adapter is what makes the difference: the base alone answers otherwise.
    expect(await llamaCppGreedy(undefined)).not.toEqual(withAdapter);
  });
});

describe("GGUF base export → llama.cpp, per architecture", () => {
  const FIXTURES = join(REPO, "test", "fixtures", "models");
  // Llama (GQA, tied), Qwen 2 (q/k/v biases; tied and untied, MQA, f16), Qwen 3 (q/k norms,
  // head_dim ≠ hidden / heads; bf16).
  const MODELS = [
    "llama-tied-gqa",
    "qwen2-bias",
    "qwen2-untied-mqa-f16",
    "qwen3-qknorm",
    "qwen3-tied-mha-bf16",
  ];
  const TEXT = "Hello world, 12345 tokens!";

  it.each(MODELS)("%s: llama.cpp tokenizes and predicts like tunekit", async (name) => {
    const file = join(root, `${name}.gguf`);
    await exportGgufModel(join(FIXTURES, name), file);
    const ours = await loadModel(join(FIXTURES, name));
    const theirs = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    try {
      const ids = ours.tokenize(TEXT, { addSpecialTokens: false });
      expect(theirs.tokenize(TEXT, false, "trimLeadingSpace")).toEqual(ids);
      const logits = await ours.logits(ids);
      const context = await theirs.createContext({ contextSize: 128, threads: 1 });
      try {
        const sequence = context.getSequence();
        const options = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1, yieldEogToken: true };
        const step = sequence.evaluateWithMetadata(ids as never, { probabilities: true }, options);
        const first = await step.next();
        await step.return();
        if (first.done) throw new Error("llama.cpp produced no token");
        const row = logits.row(logits.sequenceLength - 1);
        const logSumExp = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
        // Largest log-probability difference, relative to how far from uniform the
        // distribution is (random fixture weights give very unlikely tokens log p ≈ -70).
        let worst = 0;
        let spread = 0;
        for (const [token, p] of first.value.probabilities) {
          const ourLogProb = (row[token as number] as number) - logSumExp;
          worst = Math.max(worst, Math.abs(Math.log(p) - ourLogProb));
          spread = Math.max(spread, Math.abs(ourLogProb + Math.log(row.length)));
        }
        // Measured: worst/spread ≤ 3.6e-4 on these models (llama.cpp's CPU kernels round
        // differently from candle's); a wrong tensor layout is off by whole units.
        expect(worst).toBeLessThan(1e-3 * Math.max(1, spread));
      } finally {
        await context.dispose();
      }
    } finally {
      await theirs.dispose();
    }
  });
});

describe("a Gemma 3 GGUF base tuned by tunekit → its adapter in llama.cpp", () => {
  // The fixture is a random Gemma 3 (5 sliding-window layers of 8 tokens + 1 global, MQA,
  // SentencePiece vocabulary) written the way llama.cpp's converter writes Gemma 3; gemma3
  // adapters carry no q/k permutation.
  const GEMMA = join(REPO, "test", "fixtures", "gguf", "tiny-gemma3.gguf");
  const SEED = join(REPO, "examples", "data", "increment-seed.jsonl");

  it("llama.cpp on the same GGUF with the exported adapter predicts and answers like tunekit", async () => {
    const dataset = await Dataset.load(SEED);
    const job = await new LocalTuner().tune({
      baseModel: GEMMA,
      dataset,
      hyperparameters: { epochCount: 60, batchSize: 5, learningRate: 3e-3 },
      local: {
        outputDir: join(root, "gemma-run"),
        lora: { rank: 8, alpha: 16, dropout: 0 },
        seed: 7,
      },
    });
    const gemmaTuned = (await job.wait()) as LocalTunedModel;
    const lora = join(root, "gemma-lora.gguf");
    await gemmaTuned.exportGguf(lora);
    const ours = await gemmaTuned.model();
    const theirs = await llama.loadModel({ modelPath: GEMMA, gpuLayers: 0 });
    try {
      for (const adapter of [undefined, lora]) {
        const context = await theirs.createContext({
          contextSize: 128,
          threads: 1,
          ...(adapter === undefined
            ? {}
            : { lora: { adapters: [{ filePath: adapter, scale: 1 }] } }),
        });
        try {
          for (const { input, output } of dataset.examples.slice(0, 6)) {
            const prompt = inferencePrompt(tokenizerFromModel(ours), gemmaTuned.template, input);
            // SentencePiece, as llama.cpp reads it from the file, splits like tunekit.
            expect([2, ...theirs.tokenize(prompt.text, false, "trimLeadingSpace")]).toEqual(
              prompt.promptIds,
            );
            const sequence = context.getSequence();
            const generated: number[] = [];
            for await (const token of sequence.evaluate(prompt.promptIds as never, {
              temperature: 0,
              yieldEogToken: true,
            })) {
              if (prompt.eosTokenIds.includes(token as number) || generated.length >= 6) break;
              generated.push(token as number);
            }
            sequence.dispose();
            const answer = ours.detokenize(generated).trim().split("\n")[0];
            if (adapter === undefined) {
              expect(answer, input).not.toBe(output); // the random base knows nothing
            } else {
              const mine = await ours.generate(prompt.promptIds, {
                maxNewTokens: generated.length,
                eosTokenIds: prompt.eosTokenIds,
              });
              expect(generated, input).toEqual(mine.tokenIds);
              expect(answer, input).toBe(output);
            }
          }
        } finally {
          await context.dispose();
        }
      }
    } finally {
      await theirs.dispose();
    }
  }, 120_000);
});
