/**
 * Which files of a model repository tunekit needs, and whether a directory has them.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ModelLoadError } from "../../core/errors.js";

/** Small files read when present (config, tokenizer, chat template, generation defaults). */
export const MODEL_METADATA_FILES: readonly string[] = Object.freeze([
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "chat_template.jinja",
  "special_tokens_map.json",
]);

/** Files a model cannot load without (weights are checked separately). */
export const REQUIRED_MODEL_FILES: readonly string[] = Object.freeze([
  "config.json",
  "tokenizer.json",
]);

/** The index of sharded safetensors weights. */
export const SAFETENSORS_INDEX = "model.safetensors.index.json";

const isTopLevelSafetensors = (name: string) =>
  !name.includes("/") && name.endsWith(".safetensors");

/**
 * The weight files to fetch when the repository has no index: `model.safetensors`, else
 * every top-level `*.safetensors` except Mistral's duplicate `consolidated*.safetensors`
 * (unless those are all there is).
 */
export function unindexedWeights(files: readonly string[]): string[] {
  if (files.includes("model.safetensors")) return ["model.safetensors"];
  const all = files.filter(isTopLevelSafetensors).sort();
  const hf = all.filter((name) => !name.startsWith("consolidated"));
  return hf.length > 0 ? hf : all;
}

/** The shard file names listed by a `model.safetensors.index.json`, sorted and unique. */
export function shardsFromIndex(text: string, where: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(`${where} is not valid JSON`, { path: where, cause: error });
  }
  const map = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null) {
    throw new ModelLoadError(`${where} has no "weight_map" object`, { path: where });
  }
  const shards = new Set<string>();
  for (const value of Object.values(map)) {
    if (typeof value !== "string" || value.includes("..") || value.startsWith("/")) {
      throw new ModelLoadError(`${where} names an invalid shard file: ${String(value)}`, {
        path: where,
      });
    }
    shards.add(value);
  }
  if (shards.size === 0) throw new ModelLoadError(`${where} lists no shards`, { path: where });
  return [...shards].sort();
}

/** What a model directory holds and lacks. */
export interface ModelDirectoryCheck {
  /** Required files that are absent (config.json, tokenizer.json, weights or shards). */
  missing: string[];
  /** Weight files found (shards when an index is present). */
  weights: string[];
}

/** Lists what `dir` lacks to be loaded as a Hugging Face safetensors model. */
export async function checkModelDirectory(dir: string): Promise<ModelDirectoryCheck> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    throw new ModelLoadError(`cannot read model directory ${dir}`, { path: dir, cause: error });
  }
  // A dangling snapshot symlink (its blob deleted) does not count as present.
  const present = new Set<string>();
  await Promise.all(
    entries.map(async (name) => {
      try {
        if ((await stat(join(dir, name))).isFile()) present.add(name);
      } catch {
        // Dangling link or unreadable entry.
      }
    }),
  );
  const missing = REQUIRED_MODEL_FILES.filter((name) => !present.has(name));
  let weights: string[];
  if (present.has(SAFETENSORS_INDEX)) {
    const where = join(dir, SAFETENSORS_INDEX);
    weights = shardsFromIndex(await readFile(where, "utf8"), where);
    for (const shard of weights) if (!present.has(shard)) missing.push(shard);
  } else {
    weights = unindexedWeights([...present]);
    if (weights.length === 0) missing.push("*.safetensors (model weights)");
  }
  return { missing, weights };
}
