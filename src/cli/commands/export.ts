import { stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { InvalidOptionError } from "../../core/errors.js";
import type { GgufDtype } from "../../local/gguf.js";
import { EXIT } from "../exit-codes.js";
import type { Output } from "../output.js";

/** `--dtype` values of a model export (the addon validates them again). */
const GGUF_DTYPES: readonly GgufDtype[] = ["f32", "f16", "q8_0", "q4_k"];

export interface ExportFlags {
  format?: string;
  out?: string;
  baseModel?: string;
  dtype?: string;
  tokenizerPre?: string;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

function size(bytes: number): string {
  return bytes >= 1024 * 1024
    ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB`
    : `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * `tunekit export <source> --format gguf`: a LoRA adapter directory (a local run) becomes a
 * llama.cpp GGUF adapter; a Hugging Face model directory (or hub id) becomes a GGUF base.
 * `tunekit/local` is imported only here, so other commands never load the native addon.
 */
export async function exportCommand(
  source: string,
  flags: ExportFlags,
  out: Output,
): Promise<number> {
  const format = flags.format ?? "gguf";
  if (format !== "gguf") {
    throw new InvalidOptionError("--format", `unknown export format "${format}" (supported: gguf)`);
  }
  const local = await import("../../local/index.js");
  const started = Date.now();
  const adapter = await isFile(join(source, "adapter_config.json"));
  const name = basename(resolve(source));
  const file = flags.out ?? (adapter ? `${name}-lora.gguf` : `${name}.gguf`);
  let result: { path: string; tensors: number; bytes: number };
  if (adapter) {
    for (const [flag, value] of [
      ["--dtype", flags.dtype],
      ["--tokenizer-pre", flags.tokenizerPre],
    ] as const) {
      if (value !== undefined) {
        throw new InvalidOptionError(flag, `${flag} applies to model exports, not adapters`);
      }
    }
    result = await local.exportGgufAdapter(
      source,
      file,
      flags.baseModel === undefined ? {} : { baseModel: flags.baseModel },
    );
  } else {
    if (flags.baseModel !== undefined) {
      throw new InvalidOptionError(
        "--base-model",
        `--base-model applies to adapter exports; ${source} has no adapter_config.json`,
      );
    }
    const dtype = flags.dtype;
    if (dtype !== undefined && !GGUF_DTYPES.includes(dtype as GgufDtype)) {
      throw new InvalidOptionError(
        "--dtype",
        `--dtype must be ${GGUF_DTYPES.join(", ")}, got "${dtype}"`,
      );
    }
    result = await local.exportGgufModel(source, file, {
      ...(dtype === undefined ? {} : { dtype: dtype as GgufDtype }),
      ...(flags.tokenizerPre === undefined ? {} : { tokenizerPre: flags.tokenizerPre }),
    });
  }
  const seconds = (Date.now() - started) / 1000;
  const kind = adapter ? "adapter" : "model";
  out.result(
    { kind, format, out: result.path, tensors: result.tensors, bytes: result.bytes, seconds },
    () =>
      `wrote ${result.path}: GGUF ${kind === "adapter" ? "LoRA adapter" : "model"}, ${result.tensors} tensors, ${size(result.bytes)} in ${seconds.toFixed(1)} s`,
  );
  return EXIT.ok;
}
