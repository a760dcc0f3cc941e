/**
 * End-to-end tests of `tunekit/local` over the real native addon and the committed
 * fixture models. They need `npm run build:native` first; without the addon they fail
 * with the NativeLoadError message (they are never skipped).
 */
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AbortedError,
  InvalidOptionError,
  ModelDisposedError,
  ModelLoadError,
} from "../../src/core/errors.js";
import { type LocalModel, loadModel, modelLoadErrorKind } from "../../src/local/index.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "models");

interface Expected {
  prompt: string;
  input_ids: number[];
  greedy_ids: number[];
}

function expected(name: string): Expected {
  return JSON.parse(readFileSync(join(FIXTURES, name, "expected.json"), "utf8")) as Expected;
}

/** Reads one F32 tensor from a safetensors file (enough for expected.safetensors). */
function readF32(file: string, name: string): { shape: number[]; data: Float32Array } {
  const bytes = readFileSync(file);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const entry = header[name];
  if (entry?.dtype !== "F32") throw new Error(`no F32 tensor ${name} in ${file}`);
  const [begin, end] = entry.data_offsets;
  const slice = bytes.subarray(8 + headerLen + begin, 8 + headerLen + end);
  const data = new Float32Array(
    slice.buffer.slice(slice.byteOffset, slice.byteOffset + slice.length),
  );
  return { shape: entry.shape, data };
}

const ARCHITECTURES = [
  ["llama-tied-gqa", "llama"],
  ["llama3-scaled-sharded-bf16", "llama"],
  ["mistral-window", "mistral"],
  ["qwen2-bias", "qwen2"],
  ["qwen3-qknorm", "qwen3"],
  ["qwen2-untied-mqa-f16", "qwen2"],
  ["qwen3-tied-mha-bf16", "qwen3"],
  ["llama-smol-mha-f16", "llama"],
  ["qwen2-layer-windows", "qwen2"],
  ["gemma3-sliding-gqa", "gemma3_text"],
  ["gemma3-legacy-mqa-softcap-bf16", "gemma3_text"],
] as const;

describe("tunekit/local with the fixture models", () => {
  let model: LocalModel;
  const name = "qwen2-bias";

  beforeAll(async () => {
    model = await loadModel(join(FIXTURES, name));
  });

  it("exposes the config", () => {
    expect(model.config.modelType).toBe("qwen2");
    expect(model.config.vocabSize).toBe(320);
    expect(model.config.numKeyValueHeads).toBe(2);
    expect(model.config.eosTokenIds).toEqual([2]);
    expect(model.config.bosTokenId).toBe(1);
  });

  it("tokenizes like the reference tokenizer and round-trips", () => {
    const exp = expected(name);
    expect(model.tokenize(exp.prompt)).toEqual(exp.input_ids);
    expect(model.tokenize(exp.prompt, { addSpecialTokens: false })).toEqual(exp.input_ids.slice(1));
    expect(model.detokenize(exp.input_ids)).toBe(exp.prompt);
  });

  it.each(ARCHITECTURES)("%s: logits match transformers within 1e-4", async (fixture, type) => {
    const m = await loadModel(join(FIXTURES, fixture));
    expect(m.config.modelType).toBe(type);
    const exp = expected(fixture);
    const ref = readF32(join(FIXTURES, fixture, "expected.safetensors"), "logits");
    const logits = await m.logits(exp.input_ids);
    expect([logits.sequenceLength, logits.vocabSize]).toEqual(ref.shape);
    let maxDiff = 0;
    for (let i = 0; i < ref.data.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs((logits.data[i] ?? Number.NaN) - (ref.data[i] ?? 0)));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
    const greedy = await m.generate(exp.input_ids, {
      maxNewTokens: exp.greedy_ids.length,
      eosTokenIds: [],
    });
    expect(greedy.tokenIds).toEqual(exp.greedy_ids);
    expect(greedy.finishReason).toBe("length");
  });

  it("streams a generation whose chunks add up to the result", async () => {
    const stream = model.generateStream(expected(name).prompt, {
      maxNewTokens: 20,
      eosTokenIds: [],
    });
    const chunks: string[] = [];
    let tokens = 0;
    for await (const chunk of stream) {
      chunks.push(chunk.text);
      if (chunk.tokenId !== undefined) tokens++;
    }
    const result = await stream.result;
    expect(tokens).toBe(20);
    expect(result.tokenIds).toHaveLength(20);
    expect(chunks.join("")).toBe(result.text);
    expect(result.text).toBe(model.detokenize(result.tokenIds));
    expect(result.promptTokens).toBe(expected(name).input_ids.length);
  });

  it("cancels a generation mid-way through an AbortSignal", async () => {
    const controller = new AbortController();
    const stream = model.generateStream(expected(name).prompt, {
      maxNewTokens: 90,
      eosTokenIds: [],
      signal: controller.signal,
    });
    let seen = 0;
    const consume = async () => {
      for await (const _ of stream) {
        seen++;
        if (seen === 3) controller.abort();
      }
    };
    await expect(consume()).rejects.toBeInstanceOf(AbortedError);
    await expect(stream.result).rejects.toMatchObject({ code: "aborted" });
    expect(seen).toBeGreaterThanOrEqual(3);
    expect(seen).toBeLessThan(90);
  });

  it("stops when the consumer breaks out of the loop", async () => {
    const stream = model.generateStream(expected(name).prompt, {
      maxNewTokens: 90,
      eosTokenIds: [],
    });
    for await (const _ of stream) break;
    await expect(stream.result).rejects.toBeInstanceOf(AbortedError);
  });

  it("rejects at once when the signal is already aborted", async () => {
    await expect(
      model.generate("hi", { signal: AbortSignal.abort(), maxNewTokens: 4 }),
    ).rejects.toBeInstanceOf(AbortedError);
  });

  it("runs concurrent generations on one model independently", async () => {
    const exp = expected(name);
    const options = { maxNewTokens: exp.greedy_ids.length, eosTokenIds: [] };
    const controller = new AbortController();
    const cancelled = model.generate(exp.input_ids, {
      ...options,
      maxNewTokens: 90,
      signal: controller.signal,
    });
    const results = await Promise.all([
      model.generate(exp.input_ids, options),
      model.generate(exp.input_ids, options),
      (async () => {
        controller.abort();
        return cancelled.catch((e: unknown) => e);
      })(),
    ]);
    expect(results[0].tokenIds).toEqual(exp.greedy_ids);
    expect(results[1].tokenIds).toEqual(exp.greedy_ids);
    expect(results[2]).toBeInstanceOf(AbortedError);
  });

  it("dispose() lets running work finish, then refuses further use", async () => {
    const own = await loadModel(join(FIXTURES, name));
    const exp = expected(name);
    const running = own.generate(exp.input_ids, {
      maxNewTokens: exp.greedy_ids.length,
      eosTokenIds: [],
    });
    own.dispose();
    own.dispose(); // idempotent
    expect(own.disposed).toBe(true);
    expect((await running).tokenIds).toEqual(exp.greedy_ids);
    expect(own.config.modelType).toBe("qwen2"); // facts stay readable
    expect(() => own.tokenize("hi")).toThrow(ModelDisposedError);
    await expect(own.logits([1, 2])).rejects.toBeInstanceOf(ModelDisposedError);
    await expect(own.generate("hi")).rejects.toMatchObject({ code: "model_disposed" });
    // Other handles on the same files are unaffected.
    expect(model.tokenize("hi").length).toBeGreaterThan(0);
  });

  it("stops on a stop string and leaves it out", async () => {
    const prompt = expected(name).prompt;
    const full = await model.generate(prompt, { maxNewTokens: 24, eosTokenIds: [] });
    // A stop string from the middle of the greedy text.
    const stop = full.text.slice(8, 11);
    expect(stop.length).toBe(3);
    const cut = await model.generate(prompt, { maxNewTokens: 24, eosTokenIds: [], stop: [stop] });
    expect(cut.finishReason).toBe("stop");
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
  });

  it("stops on an EOS id", async () => {
    const exp = expected(name);
    const eos = exp.greedy_ids[4]!;
    const out = await model.generate(exp.input_ids, { maxNewTokens: 12, eosTokenIds: [eos] });
    expect(out.finishReason).toBe("eos");
    expect(out.tokenIds).toEqual(exp.greedy_ids.slice(0, exp.greedy_ids.indexOf(eos)));
  });

  it("samples reproducibly from a seed", async () => {
    // qwen3-qknorm has flat logits (|logit| < 4), so sampling really varies with the seed.
    const flat = await loadModel(join(FIXTURES, "qwen3-qknorm"));
    const options = { maxNewTokens: 16, temperature: 1.2, topK: 50, topP: 0.95, eosTokenIds: [] };
    const a = await flat.generate("The fox", { ...options, seed: 11 });
    const b = await flat.generate("The fox", { ...options, seed: 11 });
    const c = await flat.generate("The fox", { ...options, seed: 12 });
    const greedy = await flat.generate("The fox", { maxNewTokens: 16, eosTokenIds: [] });
    expect(a.tokenIds).not.toEqual(greedy.tokenIds);
    expect(a.tokenIds).toEqual(b.tokenIds);
    expect(c.tokenIds).not.toEqual(a.tokenIds);
  });

  it("rejects bad options with InvalidOptionError naming the option", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ temperature: -1 }, "temperature"],
      [{ topP: 0 }, "topP"],
      [{ maxNewTokens: 0 }, "maxNewTokens"],
      [{ seed: 1.5 }, "seed"],
      [{ stop: [""] }, "stop"],
    ];
    for (const [options, path] of cases) {
      await expect(model.generate("hi", options)).rejects.toMatchObject({
        code: "invalid_option",
        path,
      });
    }
    await expect(model.logits([100000])).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(model.logits([])).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

describe("loadModel errors", () => {
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), "tunekit-local-"));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  function copyFixture(name: string): string {
    const dir = mkdtempSync(join(scratch, `${name}-`));
    for (const file of readdirSync(join(FIXTURES, name))) {
      copyFileSync(join(FIXTURES, name, file), join(dir, file));
    }
    return dir;
  }

  it("a missing directory is a ModelLoadError of kind not_found", async () => {
    const error = await loadModel(join(scratch, "nope")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(modelLoadErrorKind(error)).toBe("not_found");
    expect((error as ModelLoadError).path).toBe(join(scratch, "nope"));
  });

  it("an aborted signal stops waiting for the load", async () => {
    await expect(
      loadModel(join(FIXTURES, "llama-tied-gqa"), { signal: AbortSignal.abort() }),
    ).rejects.toBeInstanceOf(AbortedError);
  });

  it("a truncated weight file is a ModelLoadError of kind truncated", async () => {
    const dir = copyFixture("llama-tied-gqa");
    const weights = readFileSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "model.safetensors"), weights.subarray(0, weights.length - 1000));
    const error = await loadModel(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(modelLoadErrorKind(error)).toBe("truncated");
  });

  it("a missing tokenizer and an unsupported architecture are named", async () => {
    const noTok = copyFixture("qwen3-qknorm");
    rmSync(join(noTok, "tokenizer.json"));
    const e1 = await loadModel(noTok).catch((e: unknown) => e);
    expect(modelLoadErrorKind(e1)).toBe("missing_tokenizer");

    const gemma = copyFixture("qwen3-qknorm");
    const config = JSON.parse(readFileSync(join(gemma, "config.json"), "utf8"));
    config.model_type = "phi3";
    writeFileSync(join(gemma, "config.json"), JSON.stringify(config));
    const e2 = await loadModel(gemma).catch((e: unknown) => e);
    expect(modelLoadErrorKind(e2)).toBe("unsupported_architecture");
    expect((e2 as Error).message).toMatch(/phi3.*supported: llama/);
  });

  it("config values no model can run with are refused at load, naming the key", async () => {
    // Written the way Python's json.dumps writes floats (NaN and Infinity as bare tokens).
    const cases: [key: string, raw: string][] = [
      ["num_hidden_layers", "0"],
      ["rms_norm_eps", "-1"],
      ["rms_norm_eps", "NaN"],
      ["max_position_embeddings", "0"],
    ];
    for (const [key, raw] of cases) {
      const dir = copyFixture("qwen3-qknorm");
      const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      config[key] = "__VALUE__";
      writeFileSync(join(dir, "config.json"), JSON.stringify(config).replace('"__VALUE__"', raw));
      const error = await loadModel(dir).catch((e: unknown) => e);
      expect(error, `${key} = ${raw}`).toBeInstanceOf(ModelLoadError);
      expect(modelLoadErrorKind(error)).toBe("invalid_config");
      expect((error as Error).message).toContain(`\`${key}\``);
    }
  });
});
