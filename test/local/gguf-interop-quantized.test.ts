/**
 * An adapter trained on a quantised GGUF base kept in its stored blocks (`baseWeights:
 * "stored"`, QLoRA-style) still runs in llama.cpp: the demo model is exported as a Q8_0 and as
 * a Q4_K GGUF, LoRA-tuned from that file, its adapter exported to GGUF, and llama.cpp
 * (node-llama-cpp's prebuilt CPU binary) on the same quantised file with that adapter must
 * continue the tuned prompts greedily with the same tokens as tunekit. Offline, ~15 s per
 * type; needs `npm run build:native`.
 *
 * Greedy answers, not distributions: llama.cpp multiplies Q8_0/Q4_K weights by activations it
 * quantises to 8 bits, tunekit by f32 activations, so their probabilities differ by more than
 * the f32 interop test's tolerance while the tuned answers agree.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import {
  exportGgufModel,
  type GgufDtype,
  type InferencePrompt,
  inferencePrompt,
  type LocalModel,
  type LocalTunedModel,
  LocalTuner,
  tokenizerFromModel,
} from "../../src/local/index.js";

const REPO = join(import.meta.dirname, "..", "..");
const DEMO = join(REPO, "models", "demo-counting");
const DATA = join(REPO, "examples", "data", "increment.jsonl");
const INPUTS = ["41", "1,999", "twenty two", "five hundred eleven", "98"];
const MAX_NEW_TOKENS = 8;

const root = mkdtempSync(join(tmpdir(), "tunekit-gguf-quant-interop-"));
let llama: Llama;

beforeAll(async () => {
  // The prebuilt CPU binary only: never download or compile llama.cpp in a test.
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
});

afterAll(async () => {
  await llama?.dispose();
  rmSync(root, { recursive: true, force: true });
});

/** llama.cpp's greedy continuation of each prompt on `model`, with `lora` if given. */
async function llamaCppGreedy(
  model: LlamaModel,
  prompts: readonly InferencePrompt[],
  lora: string | undefined,
): Promise<number[][]> {
  const context = await model.createContext({
    contextSize: 256,
    threads: 1, // see gguf-interop.test.ts: llama.cpp's spin-waiting threads on a busy host
    ...(lora === undefined ? {} : { lora: { adapters: [{ filePath: lora, scale: 1 }] } }),
  });
  try {
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
  } finally {
    await context.dispose();
  }
}

describe.each(["q8_0", "q4_k"] as const)(
  "a LoRA trained on a %s GGUF base kept as stored",
  (dtype: GgufDtype) => {
    const baseFile = join(root, `demo-counting-${dtype}.gguf`);
    const adapterFile = join(root, `increment-${dtype}-lora.gguf`);
    let tuned: LocalTunedModel;
    let tunekitTuned: LocalModel;
    let prompts: InferencePrompt[];
    let base: LlamaModel;

    beforeAll(async () => {
      await exportGgufModel(DEMO, baseFile, { dtype });
      const job = await new LocalTuner({ baseWeights: "stored" }).tune({
        baseModel: baseFile,
        dataset: await Dataset.load(DATA),
        // The f32 interop test's recipe.
        hyperparameters: { epochCount: 2, batchSize: 8, learningRate: 1e-3 },
        local: { outputDir: join(root, `run-${dtype}`) },
      });
      tuned = (await job.wait()) as LocalTunedModel;
      await tuned.exportGguf(adapterFile);
      tunekitTuned = await tuned.model();
      prompts = INPUTS.map((input) =>
        inferencePrompt(tokenizerFromModel(tunekitTuned), tuned.template, input),
      );
      base = await llama.loadModel({ modelPath: baseFile, gpuLayers: 0 });
    }, 120_000);

    afterAll(async () => {
      await base?.dispose();
      await tuned?.dispose();
    });

    it("llama.cpp on the same file with the exported adapter answers greedily like tunekit", async () => {
      const expected: number[][] = [];
      for (const p of prompts) {
        const result = await tunekitTuned.generate(p.promptIds, {
          maxNewTokens: MAX_NEW_TOKENS,
          eosTokenIds: p.eosTokenIds,
        });
        expected.push(result.tokenIds);
      }
      const withAdapter = await llamaCppGreedy(base, prompts, adapterFile);
      expect(withAdapter).toEqual(expected);
      // Tuning on the compact base learned the task, and llama.cpp runs what it learned.
      expect(await tuned.generate("41")).toBe("42");
      expect(tunekitTuned.detokenize(withAdapter[0] ?? []).trim()).toBe("42");
      // The adapter is what makes the difference: the quantised base alone answers otherwise.
      expect(await llamaCppGreedy(base, prompts, undefined)).not.toEqual(withAdapter);
    });
  },
);
