/**
 * Lazy loading of the native addon (`native/tunekit.<platform>-<arch>.node`, built by
 * `npm run build:native`). Nothing here runs at import time: `tunekit` and
 * `tunekit/gemini` never import this module, and `tunekit/local` calls {@link loadNative}
 * only on first use, so a missing addon costs remote-only users nothing.
 *
 * The interfaces below describe exactly what `native/node/src/lib.rs` exports; they are
 * internal and not re-exported.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NativeLoadError } from "../core/errors.js";

/** @internal */
export interface NativeModelConfig {
  modelType: string;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  ropeTheta: number;
  bosTokenId?: number | null;
  eosTokenIds: number[];
  /** A GGUF base's `tokenizer.chat_template`; absent for model directories. */
  chatTemplate?: string | null;
}

/** @internal */
export interface NativeGenerateOptions {
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  eosTokenIds?: number[];
}

/** @internal */
export interface NativeGenerationResult {
  tokenIds: number[];
  text: string;
  finishReason: "eos" | "stop" | "length";
  promptTokens: number;
}

/** @internal */
export interface NativeErrorInfo {
  code: string;
  message: string;
  kind?: string | null;
}

/** @internal */
export interface NativeGenerationEvent {
  kind: "token" | "done" | "error";
  tokenId?: number | null;
  text?: string | null;
  result?: NativeGenerationResult | null;
  error?: NativeErrorInfo | null;
}

/** @internal */
export interface NativeCancelToken {
  cancel(): void;
  readonly cancelled: boolean;
}

/** @internal */
export interface NativeModelHandle {
  readonly config: NativeModelConfig;
  tokenize(text: string, addSpecialTokens?: boolean): number[];
  detokenize(ids: number[], skipSpecialTokens?: boolean): string;
  logits(ids: number[]): Promise<Float32Array>;
  generate(
    promptIds: number[],
    options: NativeGenerateOptions,
    cancel: NativeCancelToken,
    onEvent: (event: NativeGenerationEvent) => void,
  ): void;
  /** Drops this handle's reference to the weights; running work keeps its own. */
  dispose(): void;
}

/** @internal */
export interface NativeAddon {
  loadModel(path: string): Promise<NativeModelHandle>;
  CancelToken: new () => NativeCancelToken;
}

/** Environment variable that points at a specific addon file (e.g. a prebuilt one). */
export const NATIVE_PATH_ENV = "TUNEKIT_NATIVE_PATH";

/** The file name `scripts/build-native.sh` writes for this platform. */
export function addonFileName(): string {
  return `tunekit.${process.platform}-${process.arch}.node`;
}

/**
 * Finds the package root by walking up from this module until a package.json named
 * `tunekit` appears; works from `src/local/` (tests), `dist/local/` and `dist/` chunks.
 */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        const name = (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name;
        if (name === "tunekit") return dir;
      } catch {
        // Not ours or unreadable; keep walking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Where the addon is expected, for loading and for error messages. */
export function addonPath(): string {
  const override = process.env[NATIVE_PATH_ENV];
  if (override) return override;
  const root = packageRoot() ?? process.cwd();
  return join(root, "native", addonFileName());
}

let cached: NativeAddon | undefined;

/**
 * Loads the addon once and caches it. Throws `NativeLoadError` saying exactly how to
 * build it when the file is missing or cannot be opened.
 */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  const build =
    "Build it from the package root with `npm run build:native` (needs Rust from https://rustup.rs and a C compiler)" +
    `, or point ${NATIVE_PATH_ENV} at a built addon.`;
  if (!existsSync(path)) {
    throw new NativeLoadError(
      `The tunekit native addon is not built: ${path} does not exist. ${build}`,
      { hint: "npm run build:native" },
    );
  }
  try {
    const require = createRequire(import.meta.url);
    const addon = require(path) as NativeAddon;
    if (typeof addon.loadModel !== "function" || typeof addon.CancelToken !== "function") {
      throw new Error("the file does not export loadModel/CancelToken (stale build?)");
    }
    cached = addon;
    return addon;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new NativeLoadError(
      `The tunekit native addon at ${path} could not be loaded (${reason}). Rebuild it for this Node/platform. ${build}`,
      { cause: error, hint: "npm run build:native" },
    );
  }
}

/**
 * @internal The addon, checked for the functions a feature needs (`feature` names it in the
 * error): an addon built before the feature existed is reported as stale, with the fix.
 */
export function loadNativeWith<T>(functions: readonly string[], feature: string): T {
  const addon = loadNative() as unknown as Record<string, unknown>;
  if (functions.some((name) => typeof addon[name] !== "function")) {
    throw new NativeLoadError(
      `The tunekit native addon at ${addonPath()} has no ${feature} (a stale build). ` +
        "Rebuild it from the package root with `npm run build:native`.",
      { hint: "npm run build:native" },
    );
  }
  return addon as T;
}
