/** `GeminiTuner`: the `Tuner` of the Gemini API (`tunedModels` + long-running operations). */
import type { Dispatcher } from "undici";
import type { Dataset } from "../core/dataset/dataset.js";
import { geminiProfile } from "../core/dataset/profiles.js";
import {
  AlreadyExistsError,
  InvalidOptionError,
  NotFoundError,
  TuningUnavailableError,
  throwIfAborted,
  UnsupportedOptionError,
} from "../core/errors.js";
import { parseHyperparameters } from "../core/hyperparameters.js";
import type {
  ListModelsOptions,
  PromptTemplate,
  TunedModelInfo,
  TuneRequest,
  Tuner,
} from "../core/types.js";
import {
  AccessTokenAuth,
  type AccessTokenProvider,
  ApiKeyAuth,
  type AuthProvider,
} from "../remote/auth.js";
import { serviceDidNotAct, withOutcomeNote } from "../remote/create-outcome.js";
import type { ErrorHinter } from "../remote/errors.js";
import { type FetchLike, HttpClient, type Logger } from "../remote/http.js";
import { PagePromise } from "../remote/pager.js";
import { newRequestId } from "../remote/request-id.js";
import { GeminiApi } from "./api.js";
import { toModelInfo } from "./convert.js";
import { findTuningOperation, GeminiTuningJob, type WatchOptions } from "./job.js";
import { GeminiTunedModel } from "./model.js";
import {
  assertTunedModelId,
  generateTunedModelId,
  normalizeBaseModel,
  parseTuningName,
} from "./names.js";
import { GeminiPermissions } from "./permissions.js";
import { ListModelsResponseSchema, OperationSchema } from "./schemas.js";
import { decodeDescription, encodeDescription, templateFromExamples } from "./template.js";
import type { WireModel, WireOperation, WireTunedModel } from "./wire.js";

/** The Gemini API's public host. */
export const GEMINI_BASE_URL = "https://generativelanguage.googleapis.com";

/** What to tell a user when the Gemini API will not tune. */
export const GEMINI_TUNING_MOVED =
  "Since May 2025 no Gemini API base model accepts tuning: Google moved Gemini tuning to Vertex AI. " +
  "Tune on Vertex AI with the `tunekit/vertex` backend, or tune an open model on this machine with " +
  "`tunekit/local`. (Pass `gemini: { skipPreflight: true }` to send the request anyway.)";

/** OAuth scope of tuning calls (read/write). */
export const GEMINI_TUNING_SCOPE = "https://www.googleapis.com/auth/generative-language.tuning";

/** Options of {@link GeminiTuner}. Credentials: `accessToken`, else `apiKey`, else `GEMINI_API_KEY` / `GOOGLE_API_KEY`. */
export interface GeminiTunerOptions {
  /** API key, sent only in the `x-goog-api-key` header. Default: `GEMINI_API_KEY`, then `GOOGLE_API_KEY`. */
  apiKey?: string;
  /** OAuth access token, or a function returning a fresh one (called before each request). */
  accessToken?: AccessTokenProvider;
  /** Quota project sent as `x-goog-user-project` with an access token. */
  quotaProject?: string;
  /** Default `https://generativelanguage.googleapis.com` (point it at `tunekit/testing`'s fake). */
  baseUrl?: string;
  /** Default `v1beta` (the only version that binds tuned-model create/list/patch/delete). */
  apiVersion?: string;
  /** Version of the operation-cancel path. Default `v1` (the only version that binds it). */
  cancelApiVersion?: string;
  /** Retries of a failed call (connection errors, 408, 429, 5xx). Default 2. */
  maxRetries?: number;
  /** Time limit of one attempt of a management call. Default 60 s. */
  timeoutMs?: number;
  /** Time limit of one call, retries included. Default 5 min. */
  deadlineMs?: number;
  /** Time limit of one generation attempt. Default 10 min. */
  generateTimeoutMs?: number;
  /** Cap on an honoured `Retry-After`. Default 60 s. */
  maxRetryAfterMs?: number;
  /** First backoff delay before jitter (default 500 ms), doubling per retry up to `maxRetryDelayMs` (default 8 s). */
  initialRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** First interval between status checks of a job. Default 5 s. */
  pollIntervalMs?: number;
  /** Growth of the interval. Default 1.5. */
  pollMultiplier?: number;
  /** Cap of the interval. Default 30 s. */
  maxPollIntervalMs?: number;
  /** How long `job.cancel()` waits for the job to stop. Default 60 s. */
  cancelTimeoutMs?: number;
  /** undici dispatcher (default: tunekit's shared keep-alive Agent). */
  dispatcher?: Dispatcher;
  /** Replaces the global fetch (tests). */
  fetch?: FetchLike;
  /** Receives retry warnings and request lines; never sees a secret. */
  logger?: Logger;
  /** Environment to read keys from (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Randomness for generated ids and backoff jitter (tests). */
  random?: () => number;
}

/** Fields `updateModel` can change (`tuningTask` is immutable). */
export interface GeminiModelUpdate {
  displayName?: string;
  description?: string;
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Replace the stored training template (`null` removes it). */
  template?: PromptTemplate | null;
}

/** Options of `listOperations`. */
export interface ListOperationsOptions {
  pageSize?: number;
  filter?: string;
  signal?: AbortSignal;
}

/**
 * The Gemini API backend: `tunedModels` (create, get, list, patch, delete), their long-running
 * operations (get, list, cancel), permissions and `generateContent`.
 *
 * How it behaves:
 * - **Ids.** Every create carries a `tunedModelId` (yours, or the display name plus a random
 *   6-character suffix) and a request id decided before the first attempt (stored in the
 *   description's metadata line). A create repeated after a lost response meets ALREADY_EXISTS;
 *   tunekit attaches to that model only when it carries this call's request id, so a retry
 *   never makes a second model and never takes an older model with the same id for this job.
 * - **Template.** The instruction shared by the training examples is stored as the last line of
 *   the model's `description` and applied by `generate()`, so production prompts match training
 *   on any machine (see `template.ts`).
 * - **Watching.** A job polls its operation (or, without one, the model) once someone listens
 *   (`events()`/`wait()`); metadata fields may be absent early and are never invented.
 * - **Cancel.** `job.cancel()` asks the service (best effort, `v1` path) and re-polls until the
 *   job ends or `cancelTimeoutMs` passes. A service that cannot cancel gets a
 *   `CancelUnsupportedError` naming `deleteModel`; tunekit never deletes on its own.
 * - **Re-attach.** `getJob(name)` takes a model or operation name, e.g. after a restart.
 * - **Credentials.** An API key travels only in `x-goog-api-key`; it never appears in a URL,
 *   log line, error message or serialised error.
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 * import { GeminiTuner } from "tunekit/gemini";
 *
 * const tuner = new GeminiTuner(); // GEMINI_API_KEY from the environment
 * const job = await tuner.tune({
 *   baseModel: "models/gemini-1.5-flash-001-tuning",
 *   dataset: await Dataset.load("examples.jsonl"),
 *   displayName: "Sentence Translator",
 *   hyperparameters: { epochCount: 5, batchSize: 4, learningRate: 0.001 },
 * });
 * job.events(); // progress, snapshots
 * const model = await job.wait();
 * console.log(await model.generate("Hello"));
 * ```
 */
export class GeminiTuner implements Tuner {
  readonly backend = "gemini";
  /** Sharing tuned models with users, groups or everyone. */
  readonly permissions: GeminiPermissions;
  readonly #api: GeminiApi;
  readonly #watch: WatchOptions;
  readonly #random: (() => number) | undefined;

  constructor(options: GeminiTunerOptions = {}) {
    checkNumbers(options);
    const auth = resolveAuth(options);
    const http = new HttpClient({
      baseUrl: options.baseUrl ?? GEMINI_BASE_URL,
      apiVersion: options.apiVersion ?? "v1beta",
      auth,
      ...pick(options, [
        "maxRetries",
        "timeoutMs",
        "deadlineMs",
        "maxRetryAfterMs",
        "initialRetryDelayMs",
        "maxRetryDelayMs",
        "dispatcher",
        "fetch",
        "logger",
        "random",
      ]),
      errorHints: geminiHints,
      headers: { "x-goog-api-client": "tunekit/0.1.0" },
    });
    this.#api = new GeminiApi(http, {
      cancelApiVersion: options.cancelApiVersion ?? "v1",
      generateTimeoutMs: options.generateTimeoutMs ?? 600_000,
    });
    this.permissions = new GeminiPermissions(this.#api);
    this.#watch = {
      pollIntervalMs: options.pollIntervalMs ?? 5_000,
      pollMultiplier: options.pollMultiplier ?? 1.5,
      maxPollIntervalMs: options.maxPollIntervalMs ?? 30_000,
      cancelTimeoutMs: options.cancelTimeoutMs ?? 60_000,
      maxPollFailures: 10,
    };
    this.#random = options.random;
  }

  /** The base URL requests go to (never contains a credential). */
  get baseUrl(): string {
    return this.#api.http.baseUrl;
  }

  /**
   * Checks that `baseModel` can be tuned here: `GET models/{base}` must list
   * `createTunedModel` in `supportedGenerationMethods`.
   *
   * @throws TuningUnavailableError explaining the Vertex AI / local alternatives otherwise.
   */
  async checkTunable(
    baseModel: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<WireModel> {
    const name = normalizeBaseModel(baseModel);
    let model: WireModel;
    try {
      model = await this.#api.getModel(name, options);
    } catch (error) {
      if (error instanceof NotFoundError) {
        throw new TuningUnavailableError(
          `Base model ${name} was not found on the Gemini API (HTTP 404). ${GEMINI_TUNING_MOVED}`,
          { baseModel: name, cause: error, hint: "Use tunekit/vertex or tunekit/local" },
        );
      }
      throw error;
    }
    const methods = model.supportedGenerationMethods ?? [];
    if (!methods.includes("createTunedModel")) {
      throw new TuningUnavailableError(
        `Base model ${name} cannot be tuned on the Gemini API: its supportedGenerationMethods are [${methods.join(", ")}], without "createTunedModel". ${GEMINI_TUNING_MOVED}`,
        { baseModel: name, hint: "Use tunekit/vertex or tunekit/local" },
      );
    }
    return model;
  }

  /**
   * Validates the request (dataset against the `gemini` limits, hyperparameters, options),
   * checks the base model is tunable, creates the tuned model and returns the job at once.
   * Nothing is sent when validation fails.
   *
   * The request always carries a `tunedModelId` (`gemini.tunedModelId`, else one generated
   * from the display name) and this call's request id, so a create repeated after a lost
   * response meets ALREADY_EXISTS and tunekit attaches to the model it created (and only to
   * that one: a model that existed before is an `AlreadyExistsError`).
   *
   * @throws InvalidDatasetError, InvalidOptionError, UnsupportedOptionError before any request;
   *   TuningUnavailableError when the base model cannot be tuned; ApiError subclasses.
   */
  async tune(request: TuneRequest): Promise<GeminiTuningJob> {
    const prepared = this.#prepare(request);
    const { signal } = request;
    throwIfAborted(signal);
    if (prepared.checkBase && !request.gemini?.skipPreflight) {
      await this.checkTunable(prepared.checkBase, { signal });
    }
    const tunedModel = `tunedModels/${prepared.id}`;
    const reattach = `The create request may have reached the service, so ${tunedModel} may exist: re-attach with tuner.getJob("${tunedModel}") or remove it with tuner.deleteModel("${tunedModel}")`;
    const http = this.#api.http;
    const httpRequest = {
      method: "POST" as const,
      path: "tunedModels",
      query: { tunedModelId: prepared.id },
      body: prepared.body,
      signal,
      // Safe only because the id is fixed: a repeat cannot create a second model.
      retry: true,
      reply: { schema: OperationSchema, kind: "Operation" },
    };
    let created: WireOperation | undefined;
    let attached = false;
    // Whether an attempt may have reached the service and made the model.
    let outcomeOpen = false;
    try {
      created = await http.retrying(async (context) => {
        try {
          return await http.requestOnce<WireOperation>(httpRequest, context);
        } catch (error) {
          if (!serviceDidNotAct(error)) outcomeOpen = true;
          // Maybe an earlier attempt made the model and its answer was lost: whether it did is
          // decided below, by the request id the model carries.
          if (error instanceof AlreadyExistsError && context.attempt > 1) {
            attached = true;
            return undefined;
          }
          throw error;
        }
      }, httpRequest);
    } catch (error) {
      if (error instanceof NotFoundError && prepared.checkBase) {
        throw new TuningUnavailableError(
          `Creating ${tunedModel} failed because the base model ${prepared.checkBase} was not found (HTTP 404). ${GEMINI_TUNING_MOVED}`,
          { baseModel: prepared.checkBase, cause: error },
        );
      }
      if (error instanceof AlreadyExistsError) {
        throw new AlreadyExistsError(
          `${error.message}. A tuned model named ${tunedModel} already exists: re-attach to it with tuner.getJob("${tunedModel}"), or choose another gemini.tunedModelId`,
          {
            httpStatus: error.httpStatus,
            ...(error.status ? { status: error.status } : {}),
            details: error.details,
          },
          { cause: error },
        );
      }
      throw outcomeOpen ? withOutcomeNote(error, reattach) : error;
    }

    let job: GeminiTuningJob;
    if (attached || !created) {
      job = await this.#attachAfterLostCreate(tunedModel, prepared.requestId, signal).catch(
        (error: unknown) => {
          throw error instanceof AlreadyExistsError ? error : withOutcomeNote(error, reattach);
        },
      );
    } else {
      job = new GeminiTuningJob(this.#api, { tunedModel, operation: created.name }, this.#watch);
      await job.applyOperation(created, signal);
      job.log("info", `Created ${tunedModel}${created.name ? ` (operation ${created.name})` : ""}`);
    }
    for (const warning of prepared.warnings) job.log("warning", warning);
    return job;
  }

  /**
   * A repeated create met ALREADY_EXISTS: the model is this call's own (an earlier attempt made
   * it and the answer was lost) exactly when it carries this call's request id. Anything else
   * is a model someone made before, and is never taken for this job.
   */
  async #attachAfterLostCreate(
    tunedModel: string,
    requestId: string,
    signal: AbortSignal | undefined,
  ): Promise<GeminiTuningJob> {
    const existing = await this.#api.getTunedModel(tunedModel, { signal });
    if (decodeDescription(existing.description).request !== requestId) {
      throw new AlreadyExistsError(
        `${tunedModel} already exists and is not the model this request created (the first attempt was refused or never reached the service): re-attach to it with tuner.getJob("${tunedModel}"), or choose another gemini.tunedModelId`,
        { httpStatus: 409, status: "ALREADY_EXISTS" },
      );
    }
    const op = await findTuningOperation(this.#api, tunedModel, signal);
    const job = new GeminiTuningJob(this.#api, { tunedModel, operation: op?.name }, this.#watch);
    if (op?.name) await job.applyOperation(op, signal);
    else job.applyModel(existing);
    job.log(
      "info",
      `The create response was lost; attached to ${tunedModel}, which the first attempt created${op?.name ? ` (operation ${op.name})` : ""}`,
    );
    return job;
  }

  #prepare(request: TuneRequest): {
    id: string;
    requestId: string;
    body: WireTunedModel;
    checkBase: string | undefined;
    warnings: string[];
  } {
    if (typeof request !== "object" || request === null) {
      throw new InvalidOptionError("request", "tune() needs a request object");
    }
    if (typeof request.baseModel !== "string") {
      throw new InvalidOptionError(
        "baseModel",
        "baseModel must be a string such as models/gemini-1.5-flash-001-tuning",
      );
    }
    const base = normalizeBaseModel(request.baseModel);
    if (request.validation !== undefined) {
      throw new UnsupportedOptionError(
        "gemini",
        "validation",
        "The Gemini API has no validation set: remove `validation`, or use the Vertex AI backend (tunekit/vertex), which accepts one",
      );
    }
    const dataset = request.dataset as Dataset | undefined;
    if (!dataset || !Array.isArray(dataset.examples) || typeof dataset.check !== "function") {
      throw new InvalidOptionError(
        "dataset",
        "dataset must be a Dataset (Dataset.from(...) or await Dataset.load(path))",
      );
    }
    const hyperparameters = parseHyperparameters(request.hyperparameters);
    const gemini = request.gemini ?? {};
    if (request.displayName !== undefined) {
      if (typeof request.displayName !== "string" || [...request.displayName].length > 40) {
        throw new InvalidOptionError(
          "displayName",
          "displayName must be a string of at most 40 characters (spaces included)",
        );
      }
    }
    checkRange("gemini.temperature", gemini.temperature, 0, 1);
    checkRange("gemini.topP", gemini.topP, 0, 1);
    if (gemini.topK !== undefined && (!Number.isInteger(gemini.topK) || gemini.topK < 1)) {
      throw new InvalidOptionError(
        "gemini.topK",
        `gemini.topK must be a whole number ≥ 1, got ${gemini.topK}`,
      );
    }
    if (gemini.tunedModelId !== undefined) assertTunedModelId(gemini.tunedModelId);
    // The dataset last: every option problem is reported without scanning a large dataset first.
    const warnings = dataset.check(geminiProfile).map((issue) => issue.reason);
    const examples = dataset.toGeminiExamples();

    const derived = templateFromExamples(dataset.examples);
    let template: PromptTemplate | undefined;
    if (derived === "mixed") {
      warnings.push(
        "The examples carry different instructions, so no template is stored with the tuned model: pass the instruction to generate() yourself ({ instruction })",
      );
    } else {
      template = derived;
    }
    const requestId = newRequestId(this.#random);
    const description = encodeDescription(request.description, template, requestId);
    if (template && decodeDescription(description).template === undefined) {
      warnings.push(
        "The instruction is too long to store with the tuned model: pass it to generate() yourself",
      );
    }

    const id = gemini.tunedModelId ?? generateTunedModelId(request.displayName, this.#random);
    const body: WireTunedModel = {};
    if (request.displayName !== undefined) body.displayName = request.displayName;
    if (description !== undefined) body.description = description;
    let checkBase: string | undefined;
    if (base.startsWith("tunedModels/")) {
      body.tunedModelSource = { tunedModel: base };
    } else {
      body.baseModel = base;
      checkBase = base;
    }
    if (gemini.temperature !== undefined) body.temperature = gemini.temperature;
    if (gemini.topP !== undefined) body.topP = gemini.topP;
    if (gemini.topK !== undefined) body.topK = gemini.topK;
    body.tuningTask = {
      ...(Object.keys(hyperparameters).length > 0 ? { hyperparameters } : {}),
      trainingData: { examples: { examples } },
    };
    return { id, requestId, body, checkBase, warnings };
  }

  /**
   * Re-attaches to a job by tuned-model name (`tunedModels/{id}`) or operation name
   * (`tunedModels/{id}/operations/{op}`), e.g. after a restart. Given a model name, the
   * operation is looked up (`GET tunedModels/{id}/operations`); when none is listed the job
   * follows the model's `state` and `tuningTask.snapshots` instead.
   */
  async getJob(
    name: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<GeminiTuningJob> {
    const parsed = parseTuningName(name);
    const { signal } = options;
    if (parsed.operation) {
      try {
        const op = await this.#api.getOperation(parsed.operation, { signal });
        const job = new GeminiTuningJob(
          this.#api,
          { tunedModel: parsed.tunedModel, operation: parsed.operation },
          this.#watch,
        );
        await job.applyOperation(op, signal);
        return job;
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
    const op = parsed.operation
      ? undefined
      : await findTuningOperation(this.#api, parsed.tunedModel, signal);
    const job = new GeminiTuningJob(
      this.#api,
      { tunedModel: parsed.tunedModel, operation: op?.name },
      this.#watch,
    );
    if (op?.name) await job.applyOperation(op, signal);
    else job.applyModel(await this.#api.getTunedModel(parsed.tunedModel, { signal }));
    return job;
  }

  /** `GET tunedModels/{id}`. Accepts `tunedModels/{id}` or a bare id. */
  async getModel(
    name: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<GeminiTunedModel> {
    const { tunedModel } = parseTuningName(name);
    const wire = await this.#api.getTunedModel(tunedModel, options);
    return new GeminiTunedModel(this.#api, wire, tunedModel);
  }

  /**
   * Lists tuned models. Await it for one page, or `for await` over every model of every page.
   *
   * @example
   * ```ts
   * const page = await tuner.listModels({ pageSize: 50, filter: "owner:me" });
   * for await (const info of tuner.listModels()) console.log(info.name, info.state);
   * ```
   * @throws InvalidOptionError at once (before any request) for a `pageSize` outside 1–1000.
   */
  listModels(
    options: ListModelsOptions & { pageToken?: string } = {},
  ): PagePromise<TunedModelInfo> {
    checkPageSize(options.pageSize);
    return new PagePromise(async (pageToken) => {
      const response = await this.#api.listTunedModels(
        { pageSize: options.pageSize, pageToken, filter: options.filter },
        { signal: options.signal },
      );
      return {
        items: (response.tunedModels ?? []).map((model) => toModelInfo(model)),
        nextPageToken: response.nextPageToken,
      };
    }, options.pageToken);
  }

  /**
   * Changes a tuned model's mutable fields with `PATCH …?updateMask=` naming exactly the
   * fields given. A new `description` keeps the stored template unless `template` is given.
   */
  async updateModel(
    name: string,
    update: GeminiModelUpdate,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<GeminiTunedModel> {
    const { tunedModel } = parseTuningName(name);
    const body: WireTunedModel = {};
    const mask: string[] = [];
    if (update.displayName !== undefined) {
      if ([...update.displayName].length > 40) {
        throw new InvalidOptionError("displayName", "displayName must be at most 40 characters");
      }
      body.displayName = update.displayName;
      mask.push("displayName");
    }
    if (update.description !== undefined || update.template !== undefined) {
      let description = update.description;
      let template = update.template === null ? undefined : update.template;
      if (update.description === undefined || update.template === undefined) {
        const current = decodeDescription(
          (await this.#api.getTunedModel(tunedModel, options)).description,
        );
        description ??= current.description;
        if (update.template === undefined) template = current.template;
      }
      body.description = encodeDescription(description, template) ?? "";
      mask.push("description");
    }
    checkRange("temperature", update.temperature, 0, 1);
    checkRange("topP", update.topP, 0, 1);
    if (update.topK !== undefined && (!Number.isInteger(update.topK) || update.topK < 1)) {
      throw new InvalidOptionError("topK", `topK must be a whole number ≥ 1, got ${update.topK}`);
    }
    for (const key of ["temperature", "topP", "topK"] as const) {
      if (update[key] !== undefined) {
        body[key] = update[key];
        mask.push(key);
      }
    }
    if (mask.length === 0) {
      throw new InvalidOptionError(
        "update",
        "updateModel needs at least one of displayName, description, temperature, topP, topK, template",
      );
    }
    const wire = await this.#api.patchTunedModel(tunedModel, body, mask, options);
    return new GeminiTunedModel(this.#api, wire, tunedModel);
  }

  /**
   * `DELETE tunedModels/{id}`. A retried delete whose first attempt succeeded (answer lost)
   * meets 404 and still resolves; a 404 on the first attempt throws `NotFoundError`.
   */
  async deleteModel(
    name: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<void> {
    const { tunedModel } = parseTuningName(name);
    const http = this.#api.http;
    const request = { method: "DELETE" as const, path: tunedModel, signal: options.signal };
    await http.retrying(async (context) => {
      try {
        await http.requestOnce(request, context);
      } catch (error) {
        if (error instanceof NotFoundError && context.attempt > 1) return;
        throw error;
      }
    }, request);
  }

  /**
   * Lists base models (`GET models`). Those whose `supportedGenerationMethods` include
   * `"createTunedModel"` can be tuned here (none, on the real service, since May 2025).
   *
   * @example
   * ```ts
   * const tunable = (await tuner.listBaseModels().all()).filter((m) =>
   *   m.supportedGenerationMethods?.includes("createTunedModel"),
   * );
   * ```
   */
  listBaseModels(
    options: { pageSize?: number; signal?: AbortSignal | undefined } = {},
  ): PagePromise<WireModel> {
    checkPageSize(options.pageSize);
    return new PagePromise(async (pageToken) => {
      const response = await this.#api.http.request<{
        models?: WireModel[];
        nextPageToken?: string;
      }>({
        method: "GET",
        path: "models",
        query: { pageSize: options.pageSize, pageToken },
        signal: options.signal,
        reply: { schema: ListModelsResponseSchema, kind: "ListModelsResponse" },
      });
      return { items: response.models ?? [], nextPageToken: response.nextPageToken };
    });
  }

  /** `GET tunedModels/{id}/operations/{op}`: the raw long-running operation. */
  async getOperation(
    name: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<WireOperation> {
    const parsed = parseTuningName(name);
    if (!parsed.operation) {
      throw new InvalidOptionError(
        "name",
        `"${name}" is not an operation name (tunedModels/{id}/operations/{op})`,
      );
    }
    return this.#api.getOperation(parsed.operation, options);
  }

  /** `GET tunedModels/{id}/operations`: the model's operations, paged like `listModels`. */
  listOperations(name: string, options: ListOperationsOptions = {}): PagePromise<WireOperation> {
    const { tunedModel } = parseTuningName(name);
    checkPageSize(options.pageSize);
    return new PagePromise(async (pageToken) => {
      const response = await this.#api.listOperations(
        tunedModel,
        { pageSize: options.pageSize, pageToken, filter: options.filter },
        { signal: options.signal },
      );
      return { items: response.operations ?? [], nextPageToken: response.nextPageToken };
    });
  }
}

function resolveAuth(options: GeminiTunerOptions): AuthProvider {
  if (options.accessToken !== undefined)
    return new AccessTokenAuth(options.accessToken, options.quotaProject);
  const env = options.env ?? process.env;
  const key =
    options.apiKey ?? (env.GEMINI_API_KEY || undefined) ?? (env.GOOGLE_API_KEY || undefined);
  if (key === undefined) {
    throw new InvalidOptionError(
      "apiKey",
      "No Gemini API credentials: pass { apiKey } or { accessToken }, or set GEMINI_API_KEY (or GOOGLE_API_KEY)",
      { hint: "Create a key at https://aistudio.google.com/apikey" },
    );
  }
  return new ApiKeyAuth(key);
}

const geminiHints: ErrorHinter = ({ httpStatus, message, path }) => {
  if (httpStatus === 403 && /insufficient authentication scopes/i.test(message)) {
    return `The credentials lack an OAuth scope for ${path}. API keys carry no scopes: if the service refuses the key for tuning, pass { accessToken } minted with the scope ${GEMINI_TUNING_SCOPE} (plus quotaProject); if you already use OAuth, add that scope when you mint the token`;
  }
  if (httpStatus === 404 && /^\/[^/]+\/tunedModels\/[^/]+:(stream)?generateContent$/i.test(path)) {
    return "The tuned model does not exist, or can no longer serve: models tuned on a base model Google has retired (e.g. gemini-1.5-flash-001-tuning, May 2025) stay listed but cannot be called. Check with tuner.getModel(name)";
  }
  if (httpStatus === 403 && path.includes("tunedModels/")) {
    return "Tuned models are private to their owner: use the credentials of the account/project that created the model (an access token with quotaProject if it was created with OAuth), or have the owner grant you a permission";
  }
  return undefined;
};

function checkNumbers(options: GeminiTunerOptions): void {
  const positive = [
    "timeoutMs",
    "deadlineMs",
    "generateTimeoutMs",
    "maxRetryAfterMs",
    "initialRetryDelayMs",
    "maxRetryDelayMs",
    "pollIntervalMs",
    "maxPollIntervalMs",
    "cancelTimeoutMs",
  ] as const;
  for (const key of positive) {
    const value = options[key];
    if (
      value !== undefined &&
      (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
    ) {
      throw new InvalidOptionError(
        key,
        `${key} must be a positive number of milliseconds, got ${String(value)}`,
      );
    }
  }
  const { maxRetries, pollMultiplier } = options;
  if (maxRetries !== undefined && (!Number.isInteger(maxRetries) || maxRetries < 0)) {
    throw new InvalidOptionError(
      "maxRetries",
      `maxRetries must be a whole number ≥ 0, got ${String(maxRetries)}`,
    );
  }
  if (pollMultiplier !== undefined && (!Number.isFinite(pollMultiplier) || pollMultiplier < 1)) {
    throw new InvalidOptionError(
      "pollMultiplier",
      `pollMultiplier must be ≥ 1, got ${String(pollMultiplier)}`,
    );
  }
}

function checkRange(path: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidOptionError(
      path,
      `${path} must be between ${min} and ${max}, got ${String(value)}`,
    );
  }
}

function checkPageSize(pageSize: number | undefined): void {
  if (pageSize !== undefined && (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000)) {
    throw new InvalidOptionError(
      "pageSize",
      `pageSize must be a whole number from 1 to 1000, got ${pageSize}`,
    );
  }
}

function pick<T extends object, K extends keyof T>(
  source: T,
  keys: readonly K[],
): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}
