/** A model tuned on Vertex AI: its info, and generation through its endpoint's `generateContent`. */
import { InvalidOptionError, InvalidResponseError } from "../core/errors.js";
import type { GenerateOptions, PromptTemplate, TunedModel, TunedModelInfo } from "../core/types.js";
import { samplingConfig } from "../remote/generation-config.js";
import { responseText } from "../remote/response-text.js";
import { readSseJson } from "../remote/sse.js";
import type { VertexApi } from "./api.js";
import { toModelInfo } from "./convert.js";
import { GenerateContentResponseSchema } from "./schemas.js";
import type {
  WireGenerateContentRequest,
  WireGenerateContentResponse,
  WireTuningJob,
} from "./wire.js";

/** Options of {@link VertexTunedModel.generate}. */
export interface VertexGenerateOptions extends GenerateOptions {
  /** Use this instruction (sent as `systemInstruction`) instead of the stored template's. */
  instruction?: string;
  /** Use this template instead of the stored one; `null` sends the input alone. */
  template?: PromptTemplate | null;
}

/**
 * A tuned model on Vertex AI. `name` is the tuning job's name; `endpoint` is where it serves.
 * `generate(input)` sends the same shape as training: the stored instruction as
 * `systemInstruction`, the input as the user turn.
 *
 * @example
 * ```ts
 * const model = await tuner.getModel("projects/p/locations/us-central1/tuningJobs/123");
 * console.log(model.endpoint, await model.generate("Hello"));
 * ```
 */
export class VertexTunedModel implements TunedModel {
  readonly name: string;
  readonly baseModel: string;
  /** `projects/…/endpoints/{id}`, when the job succeeded. */
  readonly endpoint: string | undefined;
  /** `projects/…/models/{id}[@version]`, when the job succeeded. */
  readonly model: string | undefined;
  readonly #api: VertexApi;
  readonly #info: TunedModelInfo;

  /** @internal Built by `VertexTuner`; use `tuner.getModel(name)`. */
  constructor(api: VertexApi, job: WireTuningJob, fallbackName?: string) {
    this.#api = api;
    this.#info = toModelInfo(job, fallbackName);
    this.name = this.#info.name;
    this.baseModel = this.#info.baseModel;
    this.endpoint = job.tunedModel?.endpoint;
    this.model = job.tunedModel?.model;
  }

  info(): TunedModelInfo {
    return this.#info;
  }

  /** The stored training template, when there is one. */
  get template(): PromptTemplate | undefined {
    return this.#info.template;
  }

  /** The `generateContent` body `generate(input, options)` sends. */
  buildRequest(input: string, options: VertexGenerateOptions = {}): WireGenerateContentRequest {
    if (typeof input !== "string") {
      throw new InvalidOptionError("input", "generate() takes the input as a string");
    }
    const base = options.template === null ? undefined : (options.template ?? this.#info.template);
    const instruction = options.instruction ?? base?.instruction;
    const hasInstruction = instruction !== undefined && instruction.length > 0;
    // As in training: an empty input sends the instruction as the user turn.
    const userText = input.length === 0 && hasInstruction ? instruction : input;
    const body: WireGenerateContentRequest = {
      contents: [{ role: "user", parts: [{ text: userText }] }],
    };
    if (hasInstruction && input.length > 0)
      body.systemInstruction = { parts: [{ text: instruction }] };
    const config = samplingConfig(options);
    if (config) body.generationConfig = config;
    return body;
  }

  /**
   * Generates a reply to `input` through `POST v1/{endpoint}:generateContent`.
   *
   * @throws InvalidOptionError when the job has no endpoint (not succeeded); ApiError
   *   subclasses; InvalidResponseError when the reply has no text (e.g. blocked).
   */
  async generate(input: string, options: VertexGenerateOptions = {}): Promise<string> {
    const endpoint = this.#endpointOrThrow();
    const body = this.buildRequest(input, options);
    const response = await this.#api.generateContent(endpoint, body, { signal: options.signal });
    const text = responseText(response);
    if (text === undefined) throw noTextError(endpoint, response);
    return text;
  }

  /** Streams the reply chunk by chunk through `POST v1/{endpoint}:streamGenerateContent?alt=sse`. */
  async *generateStream(
    input: string,
    options: VertexGenerateOptions = {},
  ): AsyncGenerator<string, void, undefined> {
    const endpoint = this.#endpointOrThrow();
    const body = this.buildRequest(input, options);
    const response = await this.#api.streamGenerateContent(endpoint, body, {
      signal: options.signal,
    });
    if (!response.body) throw new InvalidResponseError(`${endpoint}: the stream had no body`);
    let any = false;
    let last: WireGenerateContentResponse | undefined;
    for await (const chunk of readSseJson(response.body, {
      schema: GenerateContentResponseSchema,
      kind: "GenerateContentResponse",
      what: `POST ${endpoint}:streamGenerateContent`,
    })) {
      last = chunk;
      const text = responseText(chunk);
      if (text) {
        any = true;
        yield text;
      }
    }
    if (!any && last) throw noTextError(endpoint, last);
  }

  #endpointOrThrow(): string {
    if (!this.endpoint) {
      throw new InvalidOptionError(
        "model",
        `${this.name} has no endpoint to call (state ${this.#info.state}): only a succeeded tuning job serves a tuned model`,
      );
    }
    return this.endpoint;
  }

  toJSON(): TunedModelInfo & { endpoint?: string; model?: string } {
    return {
      ...this.#info,
      ...(this.endpoint ? { endpoint: this.endpoint } : {}),
      ...(this.model ? { model: this.model } : {}),
    };
  }
}

function noTextError(
  endpoint: string,
  response: WireGenerateContentResponse,
): InvalidResponseError {
  const blocked = response.promptFeedback?.blockReason;
  const finish = response.candidates?.[0]?.finishReason;
  const why = blocked
    ? `the prompt was blocked (${blocked})`
    : finish
      ? `the candidate finished with ${finish} and no text`
      : "the response had no candidates";
  return new InvalidResponseError(`${endpoint} returned no text: ${why}`);
}
