/**
 * Exports to llama.cpp's GGUF format, for llama.cpp, node-llama-cpp, Ollama, LM Studio:
 * a LoRA adapter directory as a GGUF adapter, and a Hugging Face model directory as a GGUF
 * base to load it on. The work is done by the native core; files are written atomically.
 */
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { InvalidOptionError } from "../core/errors.js";
import { fromNativeError } from "./errors.js";
import { type ResolveModelOptions, resolveModel } from "./hub/resolve.js";
import { loadNativeWith } from "./native.js";
import { ADAPTER_CONFIG_FILE, readAdapterBaseModel } from "./tuned-model.js";

/** What an export wrote. */
export interface GgufExportResult {
  /** The file written (as given). */
  path: string;
  /** Tensors in the file (two per adapted projection for an adapter). */
  tensors: number;
  /** File size in bytes. */
  bytes: number;
}

/** Options of {@link exportGgufAdapter}. */
export interface GgufAdapterExportOptions {
  /**
   * The base model the adapter was trained on: a directory, a `.gguf` file or a hub id.
   * Default: `base_model_name_or_path` from `adapter_config.json`. Only its architecture and
   * head counts are read (the GGUF naming and llama's q/k row order depend on them).
   */
  baseModel?: string;
  /** How a hub id base model is found (cache, offline, endpoint). */
  hub?: ResolveModelOptions;
}

/** Weight-matrix types {@link exportGgufModel} writes. */
export type GgufDtype = "f32" | "f16" | "q8_0" | "q4_k";
/** @internal Every {@link GgufDtype}. */
export const GGUF_DTYPES: readonly GgufDtype[] = ["f32", "f16", "q8_0", "q4_k"];

/** Options of {@link exportGgufModel}. */
export interface GgufModelExportOptions {
  /**
   * Data type of the weight matrices: `"f32"` (default, exact), `"f16"` (half the size), or
   * llama.cpp's `"q8_0"` / `"q4_k"` (about 1/4 and 1/7 of f32; a matrix whose rows are not
   * whole Q4_K blocks is written as Q8_0). Norms stay f32.
   */
  dtype?: GgufDtype;
  /**
   * llama.cpp's pre-tokenizer name (`tokenizer.ggml.pre`, e.g. `"llama-bpe"`, `"qwen2"`,
   * `"smollm"`, `"gpt-2"`). Recognised from `tokenizer.json` when omitted; give it when the
   * export says the pre-tokenizer has no known llama.cpp equivalent.
   */
  tokenizerPre?: string;
  /** How a hub id is found (cache, offline, endpoint). */
  hub?: ResolveModelOptions;
}

function exportAddon() {
  return loadNativeWith(["exportGgufAdapter", "exportGgufModel"], "GGUF export");
}

function checkOut(out: unknown): string {
  if (typeof out !== "string" || out.trim() === "") {
    throw new InvalidOptionError("out", "out must be the path of the .gguf file to write");
  }
  return out;
}

/**
 * Writes a LoRA adapter directory (PEFT files, e.g. a `LocalTuner` run) as a llama.cpp GGUF
 * LoRA adapter: `general.type = adapter`, the base's architecture, `adapter.lora.alpha`
 * (scaled for rsLoRA), and one F32 `lora_a` / `lora_b` pair per adapted projection, with
 * llama's q/k row order. Load it next to a GGUF of the same base (see {@link exportGgufModel}).
 *
 * @throws ModelLoadError when the adapter or the base model cannot be read.
 * @throws InvalidOptionError when `out` is not a path.
 * @throws ExportError when llama.cpp could not load the adapter (an adapter on embeddings or
 *   on `lm_head` of a tied model, an architecture without GGUF adapters) or the file cannot
 *   be written.
 *
 * @example
 * ```ts
 * import { exportGgufAdapter } from "tunekit/local";
 * await exportGgufAdapter("runs/increment", "increment-lora.gguf");
 * // llama-cli -m demo.gguf --lora increment-lora.gguf …
 * ```
 */
export async function exportGgufAdapter(
  adapterDir: string,
  out: string,
  options: GgufAdapterExportOptions = {},
): Promise<GgufExportResult> {
  checkOut(out);
  const dir = resolve(adapterDir);
  const baseSpec = options.baseModel ?? (await readAdapterBaseModel(dir));
  // A directory, a hub snapshot directory or a GGUF file: the core reads any of them.
  const base = await resolveModel(baseSpec, options.hub ?? {});
  try {
    return await exportAddon().exportGgufAdapter(dir, base.path, out);
  } catch (error) {
    throw fromNativeError(error, { path: out });
  }
}

/**
 * Writes a Hugging Face model directory (or hub id) as a GGUF base that llama.cpp loads:
 * tensors renamed to llama.cpp's names, llama's q/k rows permuted, tied embeddings kept as
 * `token_embd` only, hyperparameters and the byte-level BPE tokenizer as metadata.
 * Supported so far: Llama, Mistral, Qwen 2 and Qwen 3 checkpoints (no Llama 3 rope scaling,
 * no sliding windows) with a byte-level BPE tokenizer; anything else is refused with an
 * `ExportError` rather than written wrong.
 *
 * @throws ModelLoadError when the model directory cannot be read.
 * @throws ExportError when the model cannot be represented or the file cannot be written.
 *
 * @example
 * ```ts
 * import { exportGgufModel } from "tunekit/local";
 * const { bytes } = await exportGgufModel("models/demo-counting", "demo.gguf");
 * ```
 */
export async function exportGgufModel(
  model: string,
  out: string,
  options: GgufModelExportOptions = {},
): Promise<GgufExportResult> {
  checkOut(out);
  if (options.dtype !== undefined && !GGUF_DTYPES.includes(options.dtype)) {
    throw new InvalidOptionError(
      "dtype",
      `dtype must be ${GGUF_DTYPES.map((d) => `"${d}"`).join(", ")}, got ${String(options.dtype)}`,
    );
  }
  const resolved = await resolveModel(model, options.hub ?? {});
  if (resolved.kind === "gguf") {
    throw new InvalidOptionError("model", `${model} is already a GGUF file; nothing to export`);
  }
  const native: { dtype?: string; tokenizerPre?: string } = {};
  if (options.dtype !== undefined) native.dtype = options.dtype;
  if (options.tokenizerPre !== undefined) native.tokenizerPre = options.tokenizerPre;
  try {
    return await exportAddon().exportGgufModel(resolved.path, out, native);
  } catch (error) {
    throw fromNativeError(error, { path: out });
  }
}

/** Whether `dir` is a LoRA adapter directory (has `adapter_config.json`). */
export async function isAdapterDirectory(dir: string): Promise<boolean> {
  const info = await stat(join(dir, ADAPTER_CONFIG_FILE)).catch(() => undefined);
  return info?.isFile() === true;
}
