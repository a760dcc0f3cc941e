/**
 * `loadModel` and the `LocalModel` it returns: a Hugging Face model directory run by the
 * native core on this machine (CPU, f32).
 */
import { resolve } from "node:path";
import { raceAbort } from "../core/abort.js";
import { InvalidOptionError, ModelDisposedError, toAbortedError } from "../core/errors.js";
import { type BaseWeights, checkBaseWeights } from "./base-weights.js";
import { fromNativeError } from "./errors.js";
import {
  loadNative,
  type NativeGenerateOptions,
  type NativeGenerationEvent,
  type NativeGenerationResult,
  type NativeModelHandle,
} from "./native.js";

export { type BaseWeights, checkBaseWeights } from "./base-weights.js";

/** Architecture facts read from `config.json` (plus EOS ids from the generation config). */
export interface LocalModelConfig {
  /** `llama`, `mistral`, `qwen2`, `qwen3` or `gemma3_text`. */
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
  bosTokenId: number | undefined;
  /** Union of config.json, generation_config.json and tokenizer_config.json EOS tokens. */
  eosTokenIds: readonly number[];
  /** The chat template stored in a GGUF base (`tokenizer.chat_template`), if any. Model
   * directories keep theirs in tokenizer_config.json. */
  chatTemplate: string | undefined;
}

/** Options for {@link loadModel}. */
export interface LoadModelOptions {
  /** Stops waiting for the load (the native load itself runs to completion and is dropped). */
  signal?: AbortSignal;
  /**
   * How to hold the weight matrices (see {@link BaseWeights}).
   * @default "stored" for a GGUF file, "f32" for a model directory
   */
  baseWeights?: BaseWeights;
}

/** Options for {@link LocalModel.generate} and {@link LocalModel.generateStream}. */
export interface GenerateOptions {
  /** Most tokens to generate. @default 256 */
  maxNewTokens?: number;
  /** 0 = greedy; otherwise the sampling temperature. @default 0 */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = all). @default 0 */
  topK?: number;
  /** Nucleus sampling: the smallest token set whose probability reaches p. @default 1 */
  topP?: number;
  /** Seed for sampling; the same seed, prompt and options give the same text. @default 0 */
  seed?: number;
  /** Stop when the text contains one of these; the stop string is not returned. */
  stop?: readonly string[];
  /** Replaces the model's EOS ids; `[]` never stops on EOS. */
  eosTokenIds?: readonly number[];
  /** Whether a string prompt gets the tokenizer's special tokens (e.g. BOS). @default true */
  addSpecialTokens?: boolean;
  /** Cancels generation; the flag is checked before every token. */
  signal?: AbortSignal;
}

/** Why generation ended. */
export type FinishReason = "eos" | "stop" | "length";

/** The outcome of a generation. */
export interface GenerationResult {
  /** Generated text (special tokens skipped, stop string cut). */
  text: string;
  /** Generated token ids, without the prompt and without a final EOS. */
  tokenIds: number[];
  finishReason: FinishReason;
  promptTokens: number;
}

/** One streamed piece: the token just produced and the text it made final. */
export interface GenerationChunk {
  /** May be empty while a multi-byte character or a possible stop string is incomplete. */
  text: string;
  /** Absent for the final flush of held-back text. */
  tokenId?: number;
}

/** Streamed generation: iterate for chunks; `result` settles when generation ends. */
export interface GenerationStream extends AsyncIterable<GenerationChunk> {
  readonly result: Promise<GenerationResult>;
}

/** Logits for every position of a sequence, row-major `[sequenceLength × vocabSize]`. */
export interface Logits {
  readonly data: Float32Array;
  readonly sequenceLength: number;
  readonly vocabSize: number;
  /** The logits of one position (a view, not a copy). */
  row(position: number): Float32Array;
}

function check(ok: boolean, option: string, message: string): void {
  if (!ok) throw new InvalidOptionError(option, `invalid option ${option}: ${message}`);
}

const isNonNegInt = (v: number) => Number.isSafeInteger(v) && v >= 0;
const U32_MAX = 0xffff_ffff;

function isTokenIdList(ids: readonly number[]): boolean {
  return ids.every((id) => isNonNegInt(id) && id <= U32_MAX);
}

/** Validates options in JS so mistakes surface as `InvalidOptionError` naming the option. */
function toNativeOptions(o: GenerateOptions): NativeGenerateOptions {
  const out: NativeGenerateOptions = {};
  if (o.maxNewTokens !== undefined) {
    check(
      isNonNegInt(o.maxNewTokens) && o.maxNewTokens >= 1 && o.maxNewTokens <= U32_MAX,
      "maxNewTokens",
      `must be a positive integer, got ${o.maxNewTokens}`,
    );
    out.maxNewTokens = o.maxNewTokens;
  }
  if (o.temperature !== undefined) {
    check(
      Number.isFinite(o.temperature) && o.temperature >= 0,
      "temperature",
      `must be a finite number >= 0, got ${o.temperature}`,
    );
    out.temperature = o.temperature;
  }
  if (o.topK !== undefined) {
    check(
      isNonNegInt(o.topK) && o.topK <= U32_MAX,
      "topK",
      `must be an integer >= 0, got ${o.topK}`,
    );
    out.topK = o.topK;
  }
  if (o.topP !== undefined) {
    check(o.topP > 0 && o.topP <= 1, "topP", `must be in (0, 1], got ${o.topP}`);
    out.topP = o.topP;
  }
  if (o.seed !== undefined) {
    check(isNonNegInt(o.seed), "seed", `must be a non-negative safe integer, got ${o.seed}`);
    out.seed = o.seed;
  }
  if (o.stop !== undefined) {
    check(
      Array.isArray(o.stop) && o.stop.every((s) => typeof s === "string" && s.length > 0),
      "stop",
      "must be an array of non-empty strings",
    );
    out.stop = [...o.stop];
  }
  if (o.eosTokenIds !== undefined) {
    check(
      Array.isArray(o.eosTokenIds) && isTokenIdList(o.eosTokenIds),
      "eosTokenIds",
      "must be an array of token ids",
    );
    out.eosTokenIds = [...o.eosTokenIds];
  }
  return out;
}

/**
 * A model loaded by the native core. Create one with {@link loadModel}.
 *
 * @example
 * ```ts
 * const model = await loadModel("./models/SmolLM2-135M");
 * for await (const chunk of model.generateStream("Once upon a time", { maxNewTokens: 40 })) {
 *   process.stdout.write(chunk.text);
 * }
 * ```
 */
export class LocalModel {
  /** Absolute path of the model directory. */
  readonly path: string;
  readonly config: LocalModelConfig;
  readonly #handle: NativeModelHandle;
  #disposed = false;

  /** @internal Use {@link loadModel}. */
  constructor(path: string, handle: NativeModelHandle) {
    this.path = path;
    this.#handle = handle;
    const c = handle.config;
    this.config = Object.freeze({
      modelType: c.modelType,
      hiddenSize: c.hiddenSize,
      intermediateSize: c.intermediateSize,
      numHiddenLayers: c.numHiddenLayers,
      numAttentionHeads: c.numAttentionHeads,
      numKeyValueHeads: c.numKeyValueHeads,
      headDim: c.headDim,
      vocabSize: c.vocabSize,
      maxPositionEmbeddings: c.maxPositionEmbeddings,
      tieWordEmbeddings: c.tieWordEmbeddings,
      ropeTheta: c.ropeTheta,
      bosTokenId: c.bosTokenId ?? undefined,
      eosTokenIds: Object.freeze([...c.eosTokenIds]),
      chatTemplate: c.chatTemplate ?? undefined,
    });
  }

  /**
   * Releases the model's weights (for a 270M-parameter model, about 1 GB). Generation or
   * training already running finishes first and frees them when it ends. Afterwards every
   * method but `config` throws `ModelDisposedError`. Calling it again does nothing.
   *
   * @example
   * ```ts
   * const base = await loadModel("./gemma-3-270m-q4_k_m.gguf");
   * const before = await base.generate("41");
   * base.dispose(); // before tuning, so two copies are never held at once
   * ```
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#handle.dispose();
  }

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.#disposed;
  }

  #live(): NativeModelHandle {
    if (this.#disposed) throw new ModelDisposedError(this.path);
    return this.#handle;
  }

  /**
   * Token ids for `text`. With `addSpecialTokens` (default) the tokenizer's template is
   * applied, e.g. the BOS token Llama-family models expect.
   *
   * @example
   * ```ts
   * const ids = model.tokenize("Hello"); // e.g. [1, 15043]
   * ```
   */
  tokenize(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    check(typeof text === "string", "text", "must be a string");
    try {
      return this.#live().tokenize(text, options.addSpecialTokens ?? true);
    } catch (error) {
      throw fromNativeError(error, { path: this.path, option: "text" });
    }
  }

  /**
   * Text for token ids; special tokens are skipped unless `skipSpecialTokens` is false.
   *
   * @example
   * ```ts
   * model.detokenize(model.tokenize("Hello")); // "Hello"
   * ```
   */
  detokenize(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    check(Array.isArray(ids) && isTokenIdList(ids), "ids", "must be an array of token ids");
    try {
      return this.#live().detokenize([...ids], options.skipSpecialTokens ?? true);
    } catch (error) {
      throw fromNativeError(error, { path: this.path, option: "ids" });
    }
  }

  /**
   * Next-token logits at every position of `ids` (one forward pass, no cache), computed
   * off the JS thread.
   *
   * @example
   * ```ts
   * const logits = await model.logits(model.tokenize("The sky is"));
   * const last = logits.row(logits.sequenceLength - 1);
   * ```
   */
  async logits(ids: readonly number[]): Promise<Logits> {
    check(
      Array.isArray(ids) && ids.length > 0 && isTokenIdList(ids),
      "ids",
      "must be a non-empty array of token ids",
    );
    let data: Float32Array;
    try {
      data = await this.#live().logits([...ids]);
    } catch (error) {
      throw fromNativeError(error, { path: this.path, option: "ids" });
    }
    const vocabSize = this.config.vocabSize;
    return {
      data,
      sequenceLength: ids.length,
      vocabSize,
      row(position: number): Float32Array {
        check(
          Number.isInteger(position) && position >= 0 && position < ids.length,
          "position",
          `must be in [0, ${ids.length})`,
        );
        return data.subarray(position * vocabSize, (position + 1) * vocabSize);
      },
    };
  }

  /**
   * Generates text after `prompt` (a string, tokenized with special tokens, or token ids)
   * and resolves with the whole result.
   *
   * @example
   * ```ts
   * const { text, finishReason } = await model.generate("Q: 2+2=\nA:", {
   *   maxNewTokens: 8,
   *   stop: ["\n"],
   * });
   * ```
   */
  async generate(
    prompt: string | readonly number[],
    options: GenerateOptions = {},
  ): Promise<GenerationResult> {
    const stream = this.generateStream(prompt, options);
    for await (const _ of stream) {
      // Drain: the result carries the full text.
    }
    return stream.result;
  }

  /**
   * Generates text after `prompt`, yielding chunks as tokens are produced. Breaking out of
   * the loop cancels generation; so does `options.signal` (the loop then throws
   * `AbortedError`).
   *
   * @example
   * ```ts
   * const controller = new AbortController();
   * const stream = model.generateStream("Tell me a story", {
   *   temperature: 0.8,
   *   topP: 0.95,
   *   seed: 7,
   *   signal: controller.signal,
   * });
   * for await (const chunk of stream) process.stdout.write(chunk.text);
   * const { finishReason } = await stream.result;
   * ```
   */
  generateStream(
    prompt: string | readonly number[],
    options: GenerateOptions = {},
  ): GenerationStream {
    const nativeOptions = toNativeOptions(options);
    let promptIds: number[];
    if (typeof prompt === "string") {
      promptIds = this.tokenize(prompt, { addSpecialTokens: options.addSpecialTokens ?? true });
    } else {
      check(
        Array.isArray(prompt) && isTokenIdList(prompt),
        "prompt",
        "must be a string or an array of token ids",
      );
      promptIds = [...prompt];
    }
    check(promptIds.length > 0, "prompt", "must not be empty");
    return startGeneration(this.#live(), this.path, promptIds, nativeOptions, options.signal);
  }
}

/** Bridges the addon's ordered event callback to an async iterator plus a result promise. */
function startGeneration(
  handle: NativeModelHandle,
  path: string,
  promptIds: number[],
  options: NativeGenerateOptions,
  signal: AbortSignal | undefined,
): GenerationStream {
  const queue: GenerationChunk[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  let failure: unknown;
  let settle!: { resolve: (r: GenerationResult) => void; reject: (e: unknown) => void };
  const result = new Promise<GenerationResult>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // The stream may be consumed only through the iterator; don't report the same failure
  // a second time as an unhandled rejection.
  result.catch(() => {});

  const finish = (error?: unknown, value?: NativeGenerationResult) => {
    if (finished) return;
    finished = true;
    signal?.removeEventListener("abort", onAbort);
    if (error !== undefined) {
      failure = error;
      settle.reject(error);
    } else if (value) {
      settle.resolve({
        text: value.text,
        tokenIds: value.tokenIds,
        finishReason: value.finishReason,
        promptTokens: value.promptTokens,
      });
    }
    wake?.();
  };

  const addon = loadNative();
  const cancel = new addon.CancelToken();
  const onAbort = () => cancel.cancel();
  if (signal?.aborted) finish(toAbortedError(signal));

  if (!finished) {
    signal?.addEventListener("abort", onAbort, { once: true });
    const onEvent = (event: NativeGenerationEvent) => {
      // Runs from the native thread's queue: it must never throw.
      try {
        if (event.kind === "token") {
          const chunk: GenerationChunk = { text: event.text ?? "" };
          if (typeof event.tokenId === "number") chunk.tokenId = event.tokenId;
          queue.push(chunk);
          wake?.();
        } else if (event.kind === "done" && event.result) {
          finish(undefined, event.result);
        } else {
          const err = fromNativeError(event.error ?? { code: "internal", message: "no result" }, {
            path,
            option: "prompt",
          });
          finish(err.code === "aborted" && signal?.aborted ? toAbortedError(signal) : err);
        }
      } catch (error) {
        finish(error);
      }
    };
    try {
      handle.generate(promptIds, options, cancel, onEvent);
    } catch (error) {
      finish(fromNativeError(error, { path, option: "prompt" }));
    }
  }

  const iterator: AsyncIterator<GenerationChunk> = {
    async next(): Promise<IteratorResult<GenerationChunk>> {
      for (;;) {
        const chunk = queue.shift();
        if (chunk) return { value: chunk, done: false };
        if (finished) {
          if (failure !== undefined) throw failure;
          return { value: undefined, done: true };
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    },
    async return(): Promise<IteratorResult<GenerationChunk>> {
      // The consumer stopped early: stop the native loop too.
      cancel.cancel();
      queue.length = 0;
      return { value: undefined, done: true };
    },
  };

  return {
    result,
    [Symbol.asyncIterator]: () => iterator,
  };
}

/**
 * Loads a Hugging Face model directory (config.json, safetensors weights — single or
 * sharded —, tokenizer.json) or a llama.cpp GGUF file with the native core. A GGUF's
 * weights are dequantised to f32 (F32, F16, BF16, Q4_0–Q8_0 and Q2_K–Q6_K are read), its
 * tokenizer is rebuilt from the file's metadata. The addon is loaded on first use; if
 * it is not built this throws `NativeLoadError` explaining how to build it.
 *
 * Supported: Llama family (Llama 2/3 incl. llama3 rope scaling, SmolLM2, Mistral,
 * DeepSeek-LLM), Qwen2/2.5, Qwen3, Gemma 3 text (`gemma3_text`, Gemma3ForCausalLM). Weights
 * in f32/f16/bf16 are computed in f32.
 *
 * @throws {ModelLoadError} the directory is missing, malformed or unsupported; `kind` says
 *   what exactly (`truncated`, `shape_mismatch`, `missing_tokenizer`, …).
 * @throws {NativeLoadError} the addon is not built or cannot be opened.
 *
 * @example
 * ```ts
 * import { loadModel } from "tunekit/local";
 *
 * const model = await loadModel("./models/Qwen2.5-0.5B-Instruct");
 * // or: await loadModel("./gemma-3-270m-q4_k_m.gguf")
 * const { text } = await model.generate("The capital of France is", { maxNewTokens: 5 });
 * ```
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<LocalModel> {
  check(typeof path === "string" && path.length > 0, "path", "must be a non-empty string");
  checkBaseWeights(options.baseWeights, "baseWeights");
  const absolute = resolve(path);
  if (options.signal?.aborted) throw toAbortedError(options.signal);
  const addon = loadNative();
  const loading = addon.loadModel(absolute, options.baseWeights).catch((error: unknown) => {
    throw fromNativeError(error, { path: absolute });
  });
  // If the caller stops waiting, a later load failure must not surface as an unhandled
  // rejection; raceAbort still sees it when it is waiting.
  loading.catch(() => {});
  const handle = await raceAbort(loading, { signal: options.signal, what: "loading the model" });
  return new LocalModel(absolute, handle);
}
