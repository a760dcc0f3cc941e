/**
 * `LocalTunedModel`: a LoRA adapter directory (PEFT files + `tunekit.json`) applied to its base
 * model, behind the common `TunedModel` interface. `generate(rawInput)` renders the training
 * template around the input, so callers never build prompts by hand.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { ChatTurn, Example } from "../core/dataset/example.js";
import { InvalidOptionError, ModelLoadError } from "../core/errors.js";
import type { ResponseLoss, ResponseLossOptions } from "../core/evaluate/evaluate.js";
import type { GenerateOptions, TunedModel, TunedModelInfo, TuningSnapshot } from "../core/types.js";
import { fromNativeError } from "./errors.js";
import { exportGgufAdapter, type GgufExportResult } from "./gguf.js";
import { type ResolveModelOptions, resolveModel } from "./hub/resolve.js";
import { type GenerateOptions as LocalGenerateOptions, LocalModel } from "./model.js";
import { loadTrainingAddon } from "./native-train.js";
import { noSuchDirectory } from "./paths.js";
import { readModelTemplateFiles } from "./prompt/chat.js";
import { loadTemplate } from "./prompt/store.js";
import {
  cleanResponse,
  resolveTemplate,
  type TemplateDescriptor,
  type TemplateOption,
  toPromptTemplate,
} from "./prompt/template.js";
import { responseLosses } from "./response-loss.js";
import { type InferencePrompt, inferencePrompt, tokenizerFromModel } from "./sequences.js";

/** PEFT's adapter files. */
export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";
/** The run record tunekit writes beside the adapter (settings, state, what resume needs). */
export const RUN_FILE = "tunekit-run.json";
/** Every job event of a run, one JSON object per line (read by `tunekit plot`). */
export const METRICS_FILE = "metrics.jsonl";

/** Default most tokens `generate` produces when `maxOutputTokens` is not given. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 256;

/** The native generation settings for `options`, with the prompt's end-of-turn tokens and stops. */
export function nativeGenerateOptions(
  options: GenerateOptions,
  prompt: Pick<InferencePrompt, "eosTokenIds" | "stop">,
): LocalGenerateOptions {
  const local: LocalGenerateOptions = {
    maxNewTokens: options.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
    eosTokenIds: prompt.eosTokenIds,
  };
  const stop = [...prompt.stop, ...(options.stopSequences ?? [])];
  if (stop.length > 0) local.stop = stop;
  if (options.temperature !== undefined) local.temperature = options.temperature;
  if (options.topP !== undefined) local.topP = options.topP;
  if (options.topK !== undefined) local.topK = options.topK;
  if (options.seed !== undefined) local.seed = options.seed;
  if (options.signal !== undefined) local.signal = options.signal;
  return local;
}

/** What {@link LocalTunedModel.open} reads besides the adapter. */
/** `LocalTunedModel.generate` options: the common ones plus the conversation so far. */
export interface LocalTunedGenerateOptions extends GenerateOptions {
  /**
   * Earlier turns of the conversation, oldest first (user, assistant, user, …, assistant):
   * `input` is the next user turn. Rendered and tokenized exactly as multi-turn training
   * data is.
   */
  history?: readonly ChatTurn[];
}

export interface OpenTunedModelOptions {
  /** How a hub id base model is found (cache, offline, endpoint). */
  hub?: ResolveModelOptions;
  /** Extra facts for `info()` (the tuner passes what it knows about the run). */
  info?: Partial<TunedModelInfo>;
  /**
   * The prompt template to use when the directory has no `tunekit.json` — an adapter trained
   * elsewhere (e.g. with Python PEFT). Same forms as `local.template` (`"auto"` picks the base
   * model's chat template). Ignored when `tunekit.json` exists.
   */
  template?: TemplateOption;
}

/** `base_model_name_or_path` from `adapter_config.json`. */
/** Throws `ModelLoadError` "no such directory …" (with close names) unless `dir` is a directory. */
export async function requireDirectory(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (info?.isDirectory()) return;
  throw new ModelLoadError(
    info === undefined ? noSuchDirectory(dir) : `${dir} is a file, not a run or adapter directory`,
    { path: resolve(dir) },
  );
}

export async function readAdapterBaseModel(dir: string): Promise<string> {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ModelLoadError(
      `${dir} is not a LoRA adapter directory: ${ADAPTER_CONFIG_FILE} is missing`,
      { path: dir, cause: error },
    );
  }
  let base: unknown;
  try {
    base = (JSON.parse(text) as { base_model_name_or_path?: unknown }).base_model_name_or_path;
  } catch (error) {
    throw new ModelLoadError(`${file} is not valid JSON`, { path: file, cause: error });
  }
  if (typeof base !== "string" || base === "") {
    throw new ModelLoadError(
      `${file} does not name its base model (base_model_name_or_path); cannot reopen the adapter`,
      { path: file },
    );
  }
  return base;
}

/** Snapshots recorded in a run's `metrics.jsonl` (empty when there is none). */
export async function readSnapshots(dir: string): Promise<TuningSnapshot[]> {
  let text: string;
  try {
    text = await readFile(join(dir, METRICS_FILE), "utf8");
  } catch {
    return [];
  }
  const byStep = new Map<number, TuningSnapshot>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const record = JSON.parse(line) as { type?: unknown; snapshot?: TuningSnapshot };
      if (record.type === "snapshot" && record.snapshot) {
        byStep.set(record.snapshot.step, record.snapshot);
      }
    } catch {
      // A line cut by a crash: skip it.
    }
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** Finds `tunekit.json` in the adapter directory, or in its parent for a `checkpoint-N`. */
async function findTemplate(dir: string): Promise<TemplateDescriptor | undefined> {
  return (await loadTemplate(dir)) ?? (await loadTemplate(dirname(dir)));
}

/**
 * A tuned model on this machine: the base model with a LoRA adapter merged in. Its `name` is
 * the adapter directory. The model is loaded on the first `generate`.
 *
 * @example
 * ```ts
 * const model = await new LocalTuner().getModel("runs/increment");
 * console.log(await model.generate("41")); // "42"
 * ```
 */
export class LocalTunedModel implements TunedModel {
  /** Absolute adapter directory. */
  readonly name: string;
  /** The base model as given at tuning time (a directory or a hub id). */
  readonly baseModel: string;
  /** The resolved base model directory. */
  readonly baseModelPath: string;
  /** The prompt template used in training (applied by `generate`). */
  readonly template: TemplateDescriptor;
  readonly #info: TunedModelInfo;
  #model: Promise<LocalModel> | undefined;

  /** @internal Use {@link LocalTunedModel.open} or `LocalTuner.getModel`. */
  constructor(
    dir: string,
    baseModel: string,
    baseModelPath: string,
    template: TemplateDescriptor,
    info: Partial<TunedModelInfo> = {},
  ) {
    this.name = dir;
    this.baseModel = baseModel;
    this.baseModelPath = baseModelPath;
    this.template = template;
    this.#info = {
      ...info,
      name: dir,
      baseModel,
      state: "active",
      template: toPromptTemplate(template),
    };
  }

  /**
   * Opens an adapter directory written by `LocalTuner` (or a `checkpoint-N` inside one): the
   * base model comes from `adapter_config.json`, the template from `tunekit.json`.
   *
   * @throws ModelLoadError when the directory is not an adapter or has no template.
   */
  static async open(dir: string, options: OpenTunedModelOptions = {}): Promise<LocalTunedModel> {
    const absolute = resolve(dir);
    await requireDirectory(dir);
    const baseModel = await readAdapterBaseModel(absolute);
    let template = await findTemplate(absolute);
    if (template === undefined && options.template !== undefined) {
      const base = await resolveModel(baseModel, options.hub ?? {});
      // A GGUF keeps its chat template inside the file; reading it means loading the
      // model, so only explicit templates are resolved here (tunekit.json covers the rest).
      const files = base.kind === "gguf" ? {} : await readModelTemplateFiles(base.path);
      template = resolveTemplate(options.template, files);
    }
    if (template === undefined) {
      throw new ModelLoadError(
        `${absolute} has no tunekit.json, so the prompt template used in training is unknown`,
        {
          path: absolute,
          hint: 'Pass the template it was trained with, e.g. LocalTunedModel.open(dir, { template: "auto" }) for the base model\'s chat template',
        },
      );
    }
    const resolved = await resolveModel(baseModel, options.hub ?? {});
    const info: Partial<TunedModelInfo> = { ...options.info };
    if (info.snapshots === undefined) {
      const snapshots = await readSnapshots(absolute);
      if (snapshots.length > 0) info.snapshots = snapshots;
    }
    return new LocalTunedModel(absolute, baseModel, resolved.path, template, info);
  }

  info(): TunedModelInfo {
    return this.#info;
  }

  /**
   * Writes this adapter as a llama.cpp GGUF LoRA adapter at `out` (see
   * {@link exportGgufAdapter}); load it with a GGUF of the base model
   * ({@link exportGgufModel} writes one).
   *
   * @example
   * ```ts
   * const model = await new LocalTuner().getModel("runs/increment");
   * await model.exportGguf("increment-lora.gguf");
   * ```
   */
  exportGguf(out: string): Promise<GgufExportResult> {
    return exportGgufAdapter(this.name, out, { baseModel: this.baseModelPath });
  }

  /**
   * Releases the merged model's weights if they are loaded; the next `generate` or `model()`
   * loads them again.
   *
   * @example
   * ```ts
   * const answer = await tuned.generate("41");
   * await tuned.dispose();
   * ```
   */
  async dispose(): Promise<void> {
    const loading = this.#model;
    this.#model = undefined;
    const model = await loading?.catch(() => undefined);
    model?.dispose();
  }

  /** The base model with the adapter merged in, loaded once (tokenize, logits, raw generate). */
  model(): Promise<LocalModel> {
    if (!this.#model) {
      const loading = (async () => {
        const addon = loadTrainingAddon();
        try {
          const handle = await addon.loadModelWithAdapter(this.baseModelPath, this.name);
          return new LocalModel(this.baseModelPath, handle);
        } catch (error) {
          throw fromNativeError(error, { path: this.name });
        }
      })();
      // A failed load is retried by the next call.
      loading.catch(() => {
        this.#model = undefined;
      });
      this.#model = loading;
    }
    return this.#model;
  }

  /**
   * Generates the answer to a raw input, prompted exactly as in training (template,
   * instruction, BOS), stopping at the trained end token.
   *
   * @example
   * ```ts
   * await model.generate("41"); // "42"
   * await model.generate("41", { temperature: 0.7, seed: 1, maxOutputTokens: 8 });
   * // A follow-up turn of a conversation:
   * await model.generate("and the next?", {
   *   history: [{ role: "user", content: "41" }, { role: "assistant", content: "42" }],
   * });
   * ```
   */
  async generate(input: string, options: LocalTunedGenerateOptions = {}): Promise<string> {
    let text = "";
    for await (const chunk of this.generateStream(input, options)) text += chunk;
    return text;
  }

  /**
   * Σ cross-entropy of each expected response under the tuned model, prompted as in training:
   * what `evaluate` reports as loss and perplexity (the trainer's validation loss, per example).
   *
   * @example
   * ```ts
   * const [first] = await model.responseLosses([{ input: "41", output: "42" }]);
   * console.log(first.sum / first.tokens); // mean loss per response token
   * ```
   */
  async responseLosses(
    examples: readonly Example[],
    options: ResponseLossOptions = {},
  ): Promise<ResponseLoss[]> {
    return responseLosses(await this.model(), this.template, examples, options);
  }

  /** Like {@link generate}, yielding text as it is produced (the cleaned text, in order). */
  async *generateStream(
    input: string,
    options: LocalTunedGenerateOptions = {},
  ): AsyncIterable<string> {
    if (typeof input !== "string") {
      throw new InvalidOptionError("input", "input must be a string");
    }
    const model = await this.model();
    const prompt = inferencePrompt(
      tokenizerFromModel(model),
      this.template,
      input,
      options.history ? { history: options.history } : {},
    );
    const local = nativeGenerateOptions(options, prompt);
    // The response prefix (e.g. an empty think block) is only known once enough text is in:
    // hold the start back until it can be cleaned, then stream the rest as is.
    let head = "";
    let started = false;
    const prefix = this.template.kind === "chat" ? (this.template.responsePrefix ?? "") : "";
    for await (const chunk of model.generateStream(prompt.promptIds, local)) {
      if (started) {
        if (chunk.text) yield chunk.text;
        continue;
      }
      head += chunk.text;
      if (head.length > prefix.length) {
        started = true;
        const cleaned = cleanResponse(this.template, head);
        if (cleaned) yield cleaned;
      }
    }
    if (!started) {
      const cleaned = cleanResponse(this.template, head);
      if (cleaned) yield cleaned;
    }
  }
}
