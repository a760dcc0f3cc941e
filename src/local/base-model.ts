/**
 * `LocalBaseModel`: an untuned local model behind the `TunedModel` interface, prompted exactly
 * as tuning would prompt it, so `evaluate` scores a base model and its tuned adapter the same way.
 */
import type { Example } from "../core/dataset/example.js";
import { InvalidOptionError } from "../core/errors.js";
import type { ResponseLoss, ResponseLossOptions } from "../core/evaluate/evaluate.js";
import type { GenerateOptions, TunedModel, TunedModelInfo } from "../core/types.js";
import { type ResolveModelOptions, resolveModel } from "./hub/resolve.js";
import { type BaseWeights, type LocalModel, loadModel } from "./model.js";
import { modelTemplateFiles } from "./prompt/chat.js";
import {
  cleanResponse,
  resolveTemplate,
  type TemplateDescriptor,
  type TemplateOption,
  toPromptTemplate,
} from "./prompt/template.js";
import { responseLosses } from "./response-loss.js";
import { inferencePrompt, tokenizerFromModel } from "./sequences.js";
import { nativeGenerateOptions } from "./tuned-model.js";

/** Options of {@link LocalBaseModel.open}. */
export interface OpenBaseModelOptions {
  /** The prompt template, as `local.template` of a tune request. @default the tuner's default ("auto") */
  template?: TemplateOption;
  /** How a hub id is found (cache, offline, endpoint). */
  hub?: ResolveModelOptions;
  signal?: AbortSignal;
  /**
   * How to hold the weight matrices (see {@link BaseWeights}), as `loadModel`'s option.
   * @default "stored" for a GGUF file, "f32" for a model directory
   */
  baseWeights?: BaseWeights;
}

/**
 * A base model (directory, GGUF file or hub id) as a `TunedModel` with no adapter: `generate`
 * renders the template the tuner would train with, so its answers are the "before tuning"
 * baseline of a run.
 *
 * @example
 * ```ts
 * import { Dataset, evaluate } from "tunekit";
 * import { LocalBaseModel } from "tunekit/local";
 *
 * const base = await LocalBaseModel.open("HuggingFaceTB/SmolLM2-135M-Instruct");
 * const report = await evaluate(base, await Dataset.load("heldout.jsonl"));
 * await base.dispose();
 * ```
 */
export class LocalBaseModel implements TunedModel {
  /** The model as given (directory, GGUF file or hub id). */
  readonly name: string;
  readonly baseModel: string;
  readonly template: TemplateDescriptor;
  readonly #model: LocalModel;

  private constructor(name: string, model: LocalModel, template: TemplateDescriptor) {
    this.name = name;
    this.baseModel = name;
    this.#model = model;
    this.template = template;
  }

  /**
   * Resolves and loads `model`, and resolves its template.
   *
   * @throws ModelLoadError when the model cannot be found or loaded.
   */
  static async open(model: string, options: OpenBaseModelOptions = {}): Promise<LocalBaseModel> {
    if (typeof model !== "string" || model.trim() === "") {
      throw new InvalidOptionError("model", "model must be a model directory, GGUF file or hub id");
    }
    const signal = options.signal;
    const resolved = await resolveModel(model, { ...options.hub, ...(signal ? { signal } : {}) });
    const loaded = await loadModel(resolved.path, {
      ...(signal ? { signal } : {}),
      ...(options.baseWeights === undefined ? {} : { baseWeights: options.baseWeights }),
    });
    try {
      const template = resolveTemplate(options.template, await modelTemplateFiles(loaded));
      return new LocalBaseModel(model, loaded, template);
    } catch (error) {
      loaded.dispose();
      throw error;
    }
  }

  info(): TunedModelInfo {
    return {
      name: this.name,
      baseModel: this.baseModel,
      state: "active",
      template: toPromptTemplate(this.template),
    };
  }

  /** The loaded model (tokenize, logits, raw generate). */
  model(): LocalModel {
    return this.#model;
  }

  /** Releases the weights; the object cannot be used afterwards. */
  async dispose(): Promise<void> {
    this.#model.dispose();
  }

  /**
   * The answer to a raw input, prompted as tuning would prompt it.
   *
   * @example
   * ```ts
   * await base.generate("41", { maxOutputTokens: 8 });
   * ```
   */
  async generate(input: string, options: GenerateOptions = {}): Promise<string> {
    if (typeof input !== "string") {
      throw new InvalidOptionError("input", "input must be a string");
    }
    const prompt = inferencePrompt(tokenizerFromModel(this.#model), this.template, input);
    const local = nativeGenerateOptions(options, prompt);
    const { text } = await this.#model.generate(prompt.promptIds, local);
    return cleanResponse(this.template, text);
  }

  /** Σ cross-entropy of each expected response (see `evaluate`'s loss). */
  responseLosses(
    examples: readonly Example[],
    options: ResponseLossOptions = {},
  ): Promise<ResponseLoss[]> {
    return responseLosses(this.#model, this.template, examples, options);
  }
}
