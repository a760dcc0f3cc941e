/**
 * `exportGgufModel` / `exportGgufAdapter` over the real native addon: what they write, and
 * the typed errors for what llama.cpp could not load. (llama.cpp loading the files is
 * `gguf-interop.test.ts`.) Needs `npm run build:native`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ExportError, InvalidOptionError, ModelLoadError } from "../../src/core/errors.js";
import { exportGgufAdapter, exportGgufModel } from "../../src/local/index.js";

const REPO = join(import.meta.dirname, "..", "..");
const DEMO = join(REPO, "models", "demo-counting");
const root = mkdtempSync(join(tmpdir(), "tunekit-gguf-export-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A safetensors file of F32 tensors with PEFT's `{"format": "pt"}` metadata. */
function safetensors(tensors: Record<string, { shape: number[]; fill: number }>): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, { shape, fill }] of Object.entries(tensors)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Buffer.from(new Float32Array(n).fill(fill).buffer);
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, Buffer.from(json), ...chunks]);
}

/** A rank-2 PEFT adapter directory for the demo model on the given modules. */
function adapterDir(
  name: string,
  modules: Record<string, [inDim: number, outDim: number]>,
): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: 2,
    lora_alpha: 4,
    target_modules: Object.keys(modules).map((m) => m.split(".").pop()),
    base_model_name_or_path: DEMO,
  };
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(config));
  const tensors: Record<string, { shape: number[]; fill: number }> = {};
  for (const [module, [inDim, outDim]] of Object.entries(modules)) {
    tensors[`base_model.model.${module}.lora_A.weight`] = { shape: [2, inDim], fill: 0.5 };
    tensors[`base_model.model.${module}.lora_B.weight`] = { shape: [outDim, 2], fill: 0.25 };
  }
  writeFileSync(join(dir, "adapter_model.safetensors"), safetensors(tensors));
  return dir;
}

describe("exportGgufModel", () => {
  it("writes the demo model as a GGUF base and reports what it wrote", async () => {
    const out = join(root, "demo.gguf");
    const result = await exportGgufModel(DEMO, out);
    const bytes = readFileSync(out);
    expect(bytes.subarray(0, 4).toString()).toBe("GGUF");
    expect(bytes.readUInt32LE(4)).toBe(3);
    // 4 layers × 9 tensors + token_embd + output_norm; no output.weight (tied embeddings).
    expect(result).toEqual({ path: out, tensors: 38, bytes: bytes.length });

    const half = await exportGgufModel(DEMO, join(root, "demo-f16.gguf"), { dtype: "f16" });
    expect(half.bytes).toBeLessThan(result.bytes * 0.6);
  });

  it("rejects bad options and inputs with typed errors", async () => {
    await expect(exportGgufModel(DEMO, "")).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(
      exportGgufModel(DEMO, join(root, "x.gguf"), { dtype: "q4" as never }),
    ).rejects.toMatchObject({ code: "invalid_option", path: "dtype" });
    await expect(exportGgufModel(join(root, "nothing"), join(root, "x.gguf"))).rejects.toThrow(
      /not found/,
    );
    const missingDir = join(root, "no", "such", "dir", "x.gguf");
    const error = await exportGgufModel(DEMO, missingDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExportError);
    expect((error as ExportError).message).toMatch(/does not exist/);
  });
});

describe("exportGgufAdapter", () => {
  it("writes one lora_a/lora_b pair per adapted projection", async () => {
    const dir = adapterDir("qv", {
      "model.layers.0.self_attn.q_proj": [192, 192],
      "model.layers.3.self_attn.v_proj": [192, 96],
    });
    const out = join(root, "qv.gguf");
    const result = await exportGgufAdapter(dir, out);
    expect(result.tensors).toBe(4);
    const text = readFileSync(out).toString("latin1");
    for (const name of [
      "general.type",
      "adapter.lora.alpha",
      "blk.0.attn_q.weight.lora_a",
      "blk.3.attn_v.weight.lora_b",
    ]) {
      expect(text).toContain(name);
    }
  });

  it("refuses an adapter on the embeddings with ExportError, writing nothing", async () => {
    const dir = adapterDir("embed", { "model.embed_tokens": [512, 192] });
    const out = join(root, "embed.gguf");
    const error = await exportGgufAdapter(dir, out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExportError);
    expect((error as ExportError).code).toBe("export_failed");
    expect((error as ExportError).message).toMatch(/model\.embed_tokens/);
    expect(existsSync(out)).toBe(false);
  });

  it("reports a directory without an adapter as ModelLoadError", async () => {
    const error = await exportGgufAdapter(root, join(root, "none.gguf")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as ModelLoadError).message).toMatch(/adapter_config\.json/);
  });
});
