/** A Gemini tuned model: its info and text generation through `tunedModels/{id}:generateContent`. */
import { countCodePoints } from "../core/dataset/text.js";
import {
  InvalidOptionError,
  InvalidResponseError,
  UnsupportedOptionError,
} from "../core/errors.js";
import type { GenerateOptions, PromptTemplate, TunedModel, TunedModelInfo } from "../core/types.js";
import { samplingConfig } from "../remote/generation-config.js";
import { responseText } from "../remote/response-text.js";
import { readSseJson } from "../remote/sse.js";
import type { GeminiApi } from "./api.js";
import { toModelInfo } from "./convert.js";
import { GenerateContentResponseSchema } from "./schemas.js";

export { responseText } from "../remote/response-text.js";

import { renderPrompt } from "./template.js";
import type {
  WireGenerateContentRequest,
  WireGenerateContentResponse,
  WireTunedModel,
} from "./wire.js";

/** Tuned Gemini models accept at most this many input characters per request. */
export const MAX_TUNED_INPUT_CHARS = 40_000;

/**
 * Options of {@link GeminiTunedModel.generate}. Sampling fields left out are not sent, so the
 * tuned model's own defaults (`temperature`, `topP`, `topK` set at tuning time) apply.
 */
export interface GeminiGenerateOptions extends GenerateOptions {
  /** Use this instruction instead of the stored template's (folded as in training). */
  instruction?: string;
  /** Use this template instead of the stored one; `null` sends the input verbatim. */
  template?: PromptTemplate | null;
  /** Rejected: tuned models do not support JSON mode. */
  responseMimeType?: string;
  /** Rejected: tuned models do not support JSON mode. */
  responseSchema?: unknown;
  /** Rejected: tuned models do not support system instructions (the template is folded instead). */
  systemInstruction?: unknown;
}

/**
 * A tuned model on the Gemini API. `generate(input)` builds the same prompt as training:
 * the instruction stored with the model (see `template.ts`) folded before the raw input.
 *
 * @example
 * ```ts
 * const model = await tuner.getModel("tunedModels/sentence-translator-u3b7mq");
 * console.log(await model.generate("Hello"));
 * for await (const chunk of model.generateStream("Hello")) process.stdout.write(chunk);
 * ```
 */
export class GeminiTunedModel implements TunedModel {
  readonly name: string;
  readonly baseModel: string;
  readonly #api: GeminiApi;
  #info: TunedModelInfo;

  /** @internal Built by `GeminiTuner`; use `tuner.getModel(name)`. */
  constructor(api: GeminiApi, wire: WireTunedModel, fallbackName?: string) {
    this.#api = api;
    this.#info = toModelInfo(wire, fallbackName);
    this.name = this.#info.name;
    this.baseModel = this.#info.baseModel;
  }

  /** What the service reported when this object was made (see `refresh`). */
  info(): TunedModelInfo {
    return this.#info;
  }

  /** The stored training template, when there is one. */
  get template(): PromptTemplate | undefined {
    return this.#info.template;
  }

  /** Fetches the model again and updates `info()`. */
  async refresh(options: { signal?: AbortSignal | undefined } = {}): Promise<TunedModelInfo> {
    const wire = await this.#api.getTunedModel(this.name, options);
    this.#info = toModelInfo(wire, this.name);
    return this.#info;
  }

  /** The prompt `generate(input, options)` would send. */
  renderPrompt(
    input: string,
    options: Pick<GeminiGenerateOptions, "instruction" | "template"> = {},
  ): string {
    if (typeof input !== "string") {
      throw new InvalidOptionError(
        "input",
        "Tuned Gemini models take text input only: pass a string",
      );
    }
    if (options.template === null) return input;
    const base = options.template ?? this.#info.template;
    const template =
      options.instruction !== undefined ? { ...base, instruction: options.instruction } : base;
    return renderPrompt(template, input);
  }

  /** Builds the `generateContent` body after checking what tuned models accept. */
  buildRequest(input: string, options: GeminiGenerateOptions = {}): WireGenerateContentRequest {
    const prompt = this.renderPrompt(input, options);
    const chars = countCodePoints(prompt);
    if (chars > MAX_TUNED_INPUT_CHARS) {
      throw new InvalidOptionError(
        "input",
        `The prompt is ${chars.toLocaleString("en-US")} characters (template included); tuned Gemini models accept at most ${MAX_TUNED_INPUT_CHARS.toLocaleString("en-US")}`,
      );
    }
    if (options.responseMimeType !== undefined && options.responseMimeType !== "text/plain") {
      throw new UnsupportedOptionError(
        "gemini",
        "responseMimeType",
        "Tuned Gemini models do not support JSON mode (responseMimeType); ask for JSON in the examples' outputs instead",
      );
    }
    if (options.responseSchema !== undefined) {
      throw new UnsupportedOptionError(
        "gemini",
        "responseSchema",
        "Tuned Gemini models do not support JSON mode (responseSchema)",
      );
    }
    if (options.systemInstruction !== undefined) {
      throw new UnsupportedOptionError(
        "gemini",
        "systemInstruction",
        "Tuned Gemini models do not support system instructions; tunekit folds the training instruction into the input instead (option `instruction`)",
      );
    }
    const body: WireGenerateContentRequest = {
      contents: [{ role: "user", parts: [{ text: prompt }] }],
    };
    const config = samplingConfig(options);
    if (config) body.generationConfig = config;
    return body;
  }

  /**
   * Generates a reply to `input` (template applied). Sampling options override the tuned
   * model's defaults only when given.
   *
   * @throws InvalidOptionError for non-text or over-long input; UnsupportedOptionError for JSON
   *   mode or system instructions; InvalidResponseError when the reply has no text (e.g. blocked).
   */
  async generate(input: string, options: GeminiGenerateOptions = {}): Promise<string> {
    const body = this.buildRequest(input, options);
    const response = await this.#api.generateContent(this.name, body, { signal: options.signal });
    const text = responseText(response);
    if (text === undefined) throw noTextError(this.name, response);
    return text;
  }

  /** Streams the reply chunk by chunk through `:streamGenerateContent?alt=sse`. */
  async *generateStream(
    input: string,
    options: GeminiGenerateOptions = {},
  ): AsyncGenerator<string, void, undefined> {
    const body = this.buildRequest(input, options);
    const response = await this.#api.streamGenerateContent(this.name, body, {
      signal: options.signal,
    });
    if (!response.body) throw new InvalidResponseError(`${this.name}: the stream had no body`);
    let any = false;
    let last: WireGenerateContentResponse | undefined;
    for await (const chunk of readSseJson(response.body, {
      schema: GenerateContentResponseSchema,
      kind: "GenerateContentResponse",
      what: `POST ${this.name}:streamGenerateContent`,
    })) {
      last = chunk;
      const text = responseText(chunk);
      if (text) {
        any = true;
        yield text;
      }
    }
    if (!any && last?.promptFeedback?.blockReason) throw noTextError(this.name, last);
  }

  toJSON(): TunedModelInfo {
    return this.#info;
  }
}

function noTextError(model: string, response: WireGenerateContentResponse): InvalidResponseError {
  const blocked = response.promptFeedback?.blockReason;
  const finish = response.candidates?.[0]?.finishReason;
  const why = blocked
    ? `the prompt was blocked (${blocked})`
    : finish
      ? `the candidate finished with ${finish} and no text`
      : "the response had no candidates";
  return new InvalidResponseError(`${model} returned no text: ${why}`);
}
