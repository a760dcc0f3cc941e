/**
 * `baseWeights`: the base's weight matrices kept compact (a GGUF's quantised blocks, or a
 * safetensors base quantised on load) give the model the f32 path gives, up to f32 summation
 * order (stored) or the rounding of quantisation (q8_0 / q4_k) or of bf16 products (bf16); bad
 * values are refused before
 * any work. The per-type numerical parity lives in the Rust tests (`quant::parity`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import { InvalidOptionError } from "../../src/core/errors.js";
import { LocalTuner, loadModel } from "../../src/local/index.js";

const REPO = join(import.meta.dirname, "..", "..");
const GGUF = join(REPO, "test", "fixtures", "gguf", "tiny-gemma3.gguf");
const DIR = join(REPO, "test", "fixtures", "models", "llama-tied-gqa");

const root = mkdtempSync(join(tmpdir(), "tunekit-base-weights-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Largest |a - b| over the largest |b|. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
    scale = Math.max(scale, Math.abs(b[i] ?? 0));
  }
  return diff / scale;
}

describe("baseWeights", () => {
  it("keeps a GGUF base quantised by default and computes what the f32 base computes (bf16: close to it)", async () => {
    const stored = await loadModel(GGUF);
    const dense = await loadModel(GGUF, { baseWeights: "f32" });
    const ids = stored.tokenize("one two three four");
    const [a, b] = [await stored.logits(ids), await dense.logits(ids)];
    expect(relDiff(a.data, b.data)).toBeLessThan(1e-4);
    // A GGUF base dequantised and held in bf16 for the bf16 products.
    const bf16 = await loadModel(GGUF, { baseWeights: "bf16" });
    const c = await bf16.logits(ids);
    expect(relDiff(c.data, b.data)).toBeGreaterThan(0);
    expect(relDiff(c.data, b.data)).toBeLessThan(0.02);
    const options = { maxNewTokens: 12, temperature: 0 };
    expect((await stored.generate("one two", options)).text).toBe(
      (await dense.generate("one two", options)).text,
    );
  });

  it("quantises a safetensors base on load to Q8_0 / Q4_K, close to the f32 model", async () => {
    const dense = await loadModel(DIR);
    const ids = [1, 40, 7, 99, 250, 13];
    const reference = (await dense.logits(ids)).data;
    for (const [baseWeights, tolerance] of [
      ["stored", 1e-5],
      ["q8_0", 0.05],
      ["q4_k", 0.05], // this fixture's rows (64 values) are not whole Q4_K blocks: Q8_0 is used
      ["bf16", 0.02], // products with 8-bit mantissa inputs, f32 sums
    ] as const) {
      const model = await loadModel(DIR, { baseWeights });
      const got = (await model.logits(ids)).data;
      expect(relDiff(got, reference), baseWeights).toBeLessThan(tolerance);
    }
  });

  it("refuses unknown values and quantising a GGUF file again", async () => {
    const bad = (await loadModel(DIR, { baseWeights: "int4" as never }).catch((e) => e)) as Error;
    expect(bad).toBeInstanceOf(InvalidOptionError);
    expect((bad as InvalidOptionError).path).toBe("baseWeights");
    expect(() => new LocalTuner({ baseWeights: "nf4" as never })).toThrow(InvalidOptionError);
    const again = (await loadModel(GGUF, { baseWeights: "q4_k" }).catch((e) => e)) as Error;
    expect(again).toBeInstanceOf(InvalidOptionError);
    expect(again.message).toMatch(/already quantised/);
  });

  it("tunes on a base quantised on load", async () => {
    const tuner = new LocalTuner({ baseWeights: "q8_0" });
    const job = await tuner.tune({
      baseModel: DIR,
      dataset: Dataset.from([
        { input: "1", output: "2" },
        { input: "2", output: "3" },
      ]),
      hyperparameters: { epochCount: 3, batchSize: 2, learningRate: 1e-2 },
      local: { outputDir: join(root, "q8"), seed: 1 },
    });
    const model = await job.wait();
    expect(job.state()).toBe("succeeded");
    expect(typeof (await model.generate("1", { maxOutputTokens: 2 }))).toBe("string");
  });
  it("tunes with bf16 products and ends close to the f32 run", async () => {
    const data = Dataset.from([
      { input: "1", output: "2" },
      { input: "2", output: "3" },
    ]);
    const losses: Record<string, number[]> = {};
    for (const baseWeights of ["f32", "bf16"] as const) {
      const tuner = new LocalTuner({ baseWeights });
      const job = await tuner.tune({
        baseModel: DIR,
        dataset: data,
        hyperparameters: { epochCount: 3, batchSize: 2, learningRate: 1e-2 },
        local: { outputDir: join(root, baseWeights), seed: 1 },
      });
      await job.wait();
      expect(job.state()).toBe("succeeded");
      losses[baseWeights] = job.progress().snapshots.map((s) => s.meanLoss ?? Number.NaN);
    }
    const [f32, bf16] = [losses.f32 ?? [], losses.bf16 ?? []];
    expect(bf16.length).toBe(f32.length);
    expect(bf16).not.toEqual(f32); // the products really ran in bf16
    for (const [i, loss] of bf16.entries()) {
      expect(Math.abs(loss - (f32[i] ?? 0)) / (f32[i] ?? 1)).toBeLessThan(1e-2);
    }
  });
});
