/** `VertexTuner`: the `Tuner` of Vertex AI supervised tuning (`projects.locations.tuningJobs`). */
import type { Dispatcher } from "undici";
import { sleep } from "../core/abort.js";
import type { Dataset } from "../core/dataset/dataset.js";
import {
  InvalidOptionError,
  InvalidResponseError,
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
  VertexAdapterSize,
  VertexTuneOptions,
} from "../core/types.js";
import { AdcAuth, CLOUD_PLATFORM_SCOPE, type GoogleAuthLike } from "../remote/adc.js";
import { AccessTokenAuth, type AccessTokenProvider, type AuthProvider } from "../remote/auth.js";
import { serviceDidNotAct, withOutcomeNote } from "../remote/create-outcome.js";
import { encodeDescription, templateFromExamples } from "../remote/description-metadata.js";
import type { ErrorHinter } from "../remote/errors.js";
import { type FetchLike, HttpClient, type HttpClientOptions, type Logger } from "../remote/http.js";
import { PagePromise } from "../remote/pager.js";
import { VertexApi } from "./api.js";
import { toModelInfo, VERTEX_TEMPLATE_KIND } from "./convert.js";
import { vertexProfile, vertexValidationProfile } from "./dataset.js";
import { VertexTuningJob, type VertexWatchOptions } from "./job.js";
import { VertexTunedModel } from "./model.js";
import {
  assertLabels,
  assertLocation,
  assertProject,
  type GcsLocation,
  newRequestId,
  parseGcsUri,
  parseJobName,
  REQUEST_LABEL_KEY,
  STORAGE_BASE_URL,
  vertexBaseUrl,
} from "./names.js";
import { assertChunkBytes, type StagedFile, type UploadMode, uploadDataset } from "./staging.js";
import type { WireSupervisedHyperParameters, WireTuningJob } from "./wire.js";

/**
 * Options of {@link VertexTuner}. Credentials: `accessToken` when given, else Application
 * Default Credentials through google-auth-library (loaded only then), scope cloud-platform.
 */
export interface VertexTunerOptions {
  /** Google Cloud project id or number. Default: `GOOGLE_CLOUD_PROJECT`, then `GCLOUD_PROJECT`. */
  project?: string;
  /** Region such as `us-central1`, or `global`. Default: `GOOGLE_CLOUD_LOCATION`, then `us-central1`. */
  location?: string;
  /** OAuth access token, or a function returning a fresh one (called before each request). */
  accessToken?: AccessTokenProvider;
  /** Quota project sent as `x-goog-user-project`. */
  quotaProject?: string;
  /** Service-account key file for ADC (instead of the default search). */
  keyFilename?: string;
  /** An auth object with `getAccessToken()` to use instead of google-auth-library's `GoogleAuth`. */
  googleAuth?: GoogleAuthLike;
  /** Default `gs://bucket/prefix` where datasets are staged (a request's `vertex.stagingUri` wins). */
  stagingUri?: string;
  /**
   * Replaces the Vertex AI host for every location (a fake's URL). Default: the regional host
   * `https://{location}-aiplatform.googleapis.com`, or `https://aiplatform.googleapis.com` for `global`.
   */
  baseUrl?: string;
  /** Replaces `https://storage.googleapis.com` (a fake's URL). */
  storageBaseUrl?: string;
  /** Retries of a failed call (connection errors, 408, 429, 5xx). Default 2. */
  maxRetries?: number;
  /** Time limit of one attempt of a management call. Default 60 s. */
  timeoutMs?: number;
  /** Time limit of one call, retries included. Default 5 min. */
  deadlineMs?: number;
  /** Time limit of one generation attempt. Default 10 min. */
  generateTimeoutMs?: number;
  /** Time limit of one upload attempt. Default 30 min. */
  uploadTimeoutMs?: number;
  /**
   * How datasets are uploaded: `"auto"` (default) sends a file up to `uploadChunkBytes` as one
   * media request and a larger one as a resumable upload; `"media"` always streams one request;
   * `"resumable"` always uses a resumable session.
   */
  uploadMode?: UploadMode;
  /** Resumable chunk size (a multiple of 256 KiB), and the `auto` threshold. Default 8 MiB. */
  uploadChunkBytes?: number;
  /** Cap on an honoured `Retry-After`. Default 60 s. */
  maxRetryAfterMs?: number;
  /** First backoff delay before jitter (default 500 ms), doubling per retry up to `maxRetryDelayMs` (default 8 s). */
  initialRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** First interval between status checks of a job. Default 10 s (tuning takes minutes to hours). */
  pollIntervalMs?: number;
  /** Growth of the interval. Default 1.5. */
  pollMultiplier?: number;
  /** Cap of the interval. Default 60 s. */
  maxPollIntervalMs?: number;
  /** How long `job.cancel()` waits for the job to stop. Default 120 s. */
  cancelTimeoutMs?: number;
  /** undici dispatcher (default: tunekit's shared keep-alive Agent). */
  dispatcher?: Dispatcher;
  /** Replaces the global fetch (tests). */
  fetch?: FetchLike;
  /** Receives retry warnings and request lines; never sees a secret. */
  logger?: Logger;
  /** Environment to read the project and location from (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Randomness for request labels and backoff jitter (tests). */
  random?: () => number;
  /**
   * How long tunekit looks for the job of a create whose outcome is unknown (timed out, reset,
   * answer lost) before giving up with an error that names the request label. Such a create is
   * never sent again. Default 60 s.
   */
  createRecoveryMs?: number;
}

/** A `TuneRequest` whose `dataset` may be left out when `vertex.trainingDatasetUri` names the data. */
export type VertexTuneRequest = Omit<TuneRequest, "dataset"> & { dataset?: Dataset };

/** Options of `listJobs`. */
export interface ListJobsOptions {
  pageSize?: number;
  /** Vertex's list filter, e.g. `state="JOB_STATE_SUCCEEDED"` or `labels.team="nlp"`. */
  filter?: string;
  pageToken?: string;
  signal?: AbortSignal;
}

const ADAPTER_SIZES: Record<
  VertexAdapterSize,
  NonNullable<WireSupervisedHyperParameters["adapterSize"]>
> = {
  1: "ADAPTER_SIZE_ONE",
  2: "ADAPTER_SIZE_TWO",
  4: "ADAPTER_SIZE_FOUR",
  8: "ADAPTER_SIZE_EIGHT",
  16: "ADAPTER_SIZE_SIXTEEN",
  32: "ADAPTER_SIZE_THIRTY_TWO",
};

const KNOWN_VERTEX_OPTIONS = new Set<keyof VertexTuneOptions>([
  "stagingUri",
  "trainingDatasetUri",
  "validationDatasetUri",
  "adapterSize",
  "labels",
  "exportLastCheckpointOnly",
  "serviceAccount",
  "kmsKeyName",
]);

/** What `#prepare` checked and built, before any request. */
interface Prepared {
  parent: string;
  requestId: string;
  body: WireTuningJob;
  dataset: Dataset | undefined;
  validation: Dataset | undefined;
  staging: GcsLocation | undefined;
  warnings: string[];
}

/**
 * The Vertex AI backend: supervised tuning jobs (create, get, list, cancel), dataset staging
 * to Cloud Storage and `generateContent` on the tuned model's endpoint.
 *
 * How it behaves:
 * - **Validation first.** Options, hyperparameters and both datasets are checked before any
 *   request; options Vertex cannot honour (`batchSize`, an absolute `learningRate`) fail with
 *   `UnsupportedOptionError` saying what to use instead. Nothing is uploaded before that.
 * - **Staging.** The dataset becomes Vertex JSONL (`contents` with user/model turns, the
 *   instruction as `systemInstruction`) and is streamed to
 *   `{stagingUri}/tunekit-{label}/training.jsonl` (and `validation.jsonl`); or pass
 *   `vertex.trainingDatasetUri` to use data already in Cloud Storage.
 * - **Lost responses.** Vertex picks job ids itself, so every create carries a label
 *   `tunekit_request=<random>` decided before the first attempt. A create is sent again only
 *   after an answer proving the service did nothing (429, 503); after a timeout, a reset or a
 *   lost answer tunekit looks for the job with that label (for up to `createRecoveryMs`, as a
 *   slow service may still act) and attaches to it, or fails with an error naming the label.
 *   Never a duplicate job, never someone else's job.
 * - **Watching.** A job polls `GET {name}` once someone listens; Vertex reports states and
 *   data stats, not steps or losses (see `job.ts`).
 * - **Template.** An instruction shared by all examples is stored as the last line of the
 *   job's `description` (as the Gemini backend does) and sent as `systemInstruction` by
 *   `generate()`.
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 * import { VertexTuner } from "tunekit/vertex";
 *
 * const tuner = new VertexTuner({ project: "my-project", location: "us-central1", stagingUri: "gs://my-bucket/tuning" });
 * const job = await tuner.tune({ baseModel: "gemini-2.5-flash", dataset: await Dataset.load("data.jsonl") });
 * const model = await job.wait();
 * console.log(await model.generate("Hello"));
 * ```
 */
export class VertexTuner implements Tuner {
  readonly backend = "vertex";
  readonly project: string;
  readonly location: string;
  readonly #api: VertexApi;
  readonly #watch: VertexWatchOptions;
  readonly #stagingUri: string | undefined;
  readonly #random: (() => number) | undefined;
  readonly #upload: { mode?: UploadMode; chunkBytes?: number };
  readonly #createRecoveryMs: number;

  constructor(options: VertexTunerOptions = {}) {
    checkNumbers(options);
    const env = options.env ?? process.env;
    const project =
      options.project ?? (env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || undefined);
    if (project === undefined) {
      throw new InvalidOptionError(
        "project",
        "No Google Cloud project: pass { project } or set GOOGLE_CLOUD_PROJECT",
      );
    }
    assertProject(project);
    const location = options.location ?? (env.GOOGLE_CLOUD_LOCATION || "us-central1");
    assertLocation(location);
    this.project = project;
    this.location = location;
    if (options.stagingUri !== undefined) parseGcsUri(options.stagingUri, "stagingUri");
    this.#stagingUri = options.stagingUri;
    this.#random = options.random;
    this.#createRecoveryMs = options.createRecoveryMs ?? 60_000;
    if (options.uploadChunkBytes !== undefined) assertChunkBytes(options.uploadChunkBytes);
    if (
      options.uploadMode !== undefined &&
      !["auto", "media", "resumable"].includes(options.uploadMode)
    ) {
      throw new InvalidOptionError(
        "uploadMode",
        `uploadMode must be "auto", "media" or "resumable", got ${String(options.uploadMode)}`,
      );
    }
    this.#upload = {
      ...(options.uploadMode ? { mode: options.uploadMode } : {}),
      ...(options.uploadChunkBytes ? { chunkBytes: options.uploadChunkBytes } : {}),
    };

    const auth: AuthProvider =
      options.accessToken !== undefined
        ? new AccessTokenAuth(options.accessToken, options.quotaProject)
        : new AdcAuth({
            scopes: [CLOUD_PLATFORM_SCOPE],
            ...(options.keyFilename ? { keyFilename: options.keyFilename } : {}),
            ...(options.quotaProject ? { quotaProject: options.quotaProject } : {}),
            ...(options.googleAuth ? { googleAuth: options.googleAuth } : {}),
          });
    const shared: Omit<HttpClientOptions, "baseUrl" | "apiVersion"> = {
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
      errorHints: vertexHints,
      headers: { "x-goog-api-client": "tunekit/0.1.0" },
    };
    const clients = new Map<string, HttpClient>();
    const clientFor = (where: string | undefined): HttpClient => {
      const key = options.baseUrl ?? vertexBaseUrl(where ?? location);
      let client = clients.get(key);
      if (!client) {
        client = new HttpClient({ ...shared, baseUrl: key, apiVersion: "v1" });
        clients.set(key, client);
      }
      return client;
    };
    this.#api = new VertexApi({
      clientFor,
      storage: new HttpClient({
        ...shared,
        baseUrl: options.storageBaseUrl ?? STORAGE_BASE_URL,
        apiVersion: "",
      }),
      generateTimeoutMs: options.generateTimeoutMs ?? 600_000,
      uploadTimeoutMs: options.uploadTimeoutMs ?? 30 * 60_000,
    });
    this.#watch = {
      pollIntervalMs: options.pollIntervalMs ?? 10_000,
      pollMultiplier: options.pollMultiplier ?? 1.5,
      maxPollIntervalMs: options.maxPollIntervalMs ?? 60_000,
      cancelTimeoutMs: options.cancelTimeoutMs ?? 120_000,
      maxPollFailures: 10,
    };
  }

  /** `projects/{project}/locations/{location}`. */
  get parent(): string {
    return `projects/${this.project}/locations/${this.location}`;
  }

  /** The Vertex AI base URL of this tuner's location (never contains a credential). */
  get baseUrl(): string {
    return this.#api.clientFor(`${this.parent}/x`).baseUrl;
  }

  /** The raw API wrappers (for calls tunekit does not wrap). */
  get api(): VertexApi {
    return this.#api;
  }

  /**
   * Validates the request, stages the dataset(s) in Cloud Storage, creates the tuning job
   * (`POST v1/{parent}/tuningJobs`) and returns the job at once.
   *
   * @throws InvalidDatasetError, InvalidOptionError, UnsupportedOptionError before any
   *   request; ApiError subclasses from the upload or the create.
   */
  async tune(request: VertexTuneRequest): Promise<VertexTuningJob> {
    const prepared = this.#prepare(request);
    const { signal } = request;
    throwIfAborted(signal);
    const spec = prepared.body.supervisedTuningSpec as NonNullable<
      WireTuningJob["supervisedTuningSpec"]
    >;
    const staged: StagedFile[] = [];
    if (prepared.staging) {
      const { bucket, prefix } = prepared.staging;
      const folder = `${prefix ? `${prefix}/` : ""}tunekit-${prepared.requestId}`;
      const upload = (dataset: Dataset, file: string) =>
        uploadDataset(
          this.#api,
          dataset,
          { bucket, object: `${folder}/${file}` },
          { signal, ...this.#upload },
        );
      if (prepared.dataset && spec.trainingDatasetUri === undefined) {
        const file = await upload(prepared.dataset, "training.jsonl");
        spec.trainingDatasetUri = file.uri;
        staged.push(file);
      }
      if (prepared.validation && spec.validationDatasetUri === undefined) {
        const file = await upload(prepared.validation, "validation.jsonl");
        spec.validationDatasetUri = file.uri;
        staged.push(file);
      }
    }
    throwIfAborted(signal);
    const { job: wire, recovered } = await this.#create(prepared, signal);
    const job = new VertexTuningJob(this.#api, wire, this.#watch);
    for (const file of staged) {
      job.log(
        "info",
        `Uploaded ${file.examples} examples (${file.bytes} bytes${file.mode === "resumable" ? `, resumable, ${file.requests} chunks` : ""}) to ${file.uri}`,
        file,
      );
    }
    job.log(
      "info",
      recovered
        ? `The create response was lost; attached to ${job.name}, which the first attempt created (label ${REQUEST_LABEL_KEY}=${prepared.requestId})`
        : `Created ${job.name}`,
    );
    for (const warning of prepared.warnings) job.log("warning", warning);
    return job;
  }

  /**
   * The create. Vertex AI picks job ids itself, so a create is sent again only after an answer
   * that proves the service did nothing (429, 503, a connection that never opened). After any
   * other failure (timeout, reset, lost answer, 5xx) the job may exist or may still appear: it
   * is looked up by the request label, decided before the first attempt, for up to
   * `createRecoveryMs`, and only that job is attached. Not found → the error says where to
   * look later.
   */
  async #create(
    prepared: Prepared,
    signal: AbortSignal | undefined,
  ): Promise<{ job: WireTuningJob; recovered: boolean }> {
    const http = this.#api.clientFor(prepared.parent);
    const request = this.#api.createRequest(prepared.parent, prepared.body, signal);
    const note = `The create request may have reached Vertex AI, so the job may exist (or appear later): find it with tuner.findJobByRequestLabel("${prepared.requestId}") (label ${REQUEST_LABEL_KEY}=${prepared.requestId}) before tuning again`;
    let sent = false;
    let outcomeOpen = false;
    let job: WireTuningJob;
    try {
      job = await http.retrying(
        async (context) => {
          sent = true;
          try {
            return await http.requestOnce<WireTuningJob>(request, context);
          } catch (error) {
            if (!serviceDidNotAct(error)) outcomeOpen = true;
            throw error;
          }
        },
        { ...request, shouldRetry: serviceDidNotAct },
      );
    } catch (error) {
      if (!sent) throw error;
      if (!outcomeOpen || signal?.aborted) throw outcomeOpen ? withOutcomeNote(error, note) : error;
      let found: WireTuningJob | undefined;
      try {
        found = await this.#lookForOwnJob(prepared.requestId, signal);
      } catch (lookupError) {
        throw withOutcomeNote(lookupError, note);
      }
      if (found) return { job: found, recovered: true };
      throw withOutcomeNote(error, note);
    }
    if (typeof job.name !== "string" || job.name === "") {
      throw new InvalidResponseError(
        `POST v1/${prepared.parent}/tuningJobs answered a TuningJob without a name`,
      );
    }
    return { job, recovered: false };
  }

  /**
   * After a create with an unknown outcome: the job carrying `requestId` as its label, looked
   * up at once and then at growing intervals until `createRecoveryMs` has passed (a slow
   * service may act on the create after the client gave up on it).
   */
  async #lookForOwnJob(
    requestId: string,
    signal: AbortSignal | undefined,
  ): Promise<WireTuningJob | undefined> {
    const until = Date.now() + this.#createRecoveryMs;
    for (let round = 0; ; round++) {
      const found = await this.findJobByRequestLabel(requestId, { signal });
      if (found) return found;
      const left = until - Date.now();
      if (left <= 0) return undefined;
      await sleep(Math.min(left, Math.min(8_000, 250 * 2 ** round)), signal);
    }
  }

  /**
   * The job a `tune()` call created, found by its `tunekit_request` label (see
   * `job.requestLabel`), or undefined.
   */
  async findJobByRequestLabel(
    requestId: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<WireTuningJob | undefined> {
    const filter = `labels.${REQUEST_LABEL_KEY}="${requestId}"`;
    for await (const job of this.listJobs({
      filter,
      ...(options.signal ? { signal: options.signal } : {}),
    })) {
      if (job.labels?.[REQUEST_LABEL_KEY] === requestId) return job;
    }
    return undefined;
  }

  #prepare(request: VertexTuneRequest): Prepared {
    if (typeof request !== "object" || request === null) {
      throw new InvalidOptionError("request", "tune() needs a request object");
    }
    if (typeof request.baseModel !== "string" || request.baseModel.trim() === "") {
      throw new InvalidOptionError(
        "baseModel",
        "baseModel must be a Vertex AI model id such as gemini-2.5-flash",
      );
    }
    const hyper = parseHyperparameters(request.hyperparameters);
    if (hyper.batchSize !== undefined) {
      throw new UnsupportedOptionError(
        "vertex",
        "hyperparameters.batchSize",
        "Vertex AI supervised tuning chooses the batch size itself and has no batchSize field: remove hyperparameters.batchSize (the number of steps it picks is reported in the job's data stats)",
      );
    }
    if (hyper.learningRate !== undefined) {
      throw new UnsupportedOptionError(
        "vertex",
        "hyperparameters.learningRate",
        "Vertex AI takes no absolute learning rate: use hyperparameters.learningRateMultiplier instead (it scales the learning rate Vertex recommends for the base model and dataset; 1.0 keeps it)",
      );
    }
    const vertex: VertexTuneOptions = request.vertex ?? {};
    for (const key of Object.keys(vertex)) {
      if (!KNOWN_VERTEX_OPTIONS.has(key as keyof VertexTuneOptions)) {
        throw new InvalidOptionError(
          `vertex.${key}`,
          `Unknown Vertex option "${key}" (known: ${[...KNOWN_VERTEX_OPTIONS].join(", ")})`,
        );
      }
    }
    if (request.displayName !== undefined) {
      if (typeof request.displayName !== "string" || [...request.displayName].length > 128) {
        throw new InvalidOptionError(
          "displayName",
          "displayName must be a string of at most 128 characters",
        );
      }
    }
    if (vertex.adapterSize !== undefined && !(vertex.adapterSize in ADAPTER_SIZES)) {
      throw new InvalidOptionError(
        "vertex.adapterSize",
        `vertex.adapterSize must be one of 1, 2, 4, 8, 16, 32, got ${String(vertex.adapterSize)}`,
      );
    }
    if (vertex.labels !== undefined) assertLabels(vertex.labels);
    if (vertex.trainingDatasetUri !== undefined)
      parseGcsUri(vertex.trainingDatasetUri, "vertex.trainingDatasetUri");
    if (vertex.validationDatasetUri !== undefined)
      parseGcsUri(vertex.validationDatasetUri, "vertex.validationDatasetUri");
    if (vertex.validationDatasetUri !== undefined && request.validation !== undefined) {
      throw new InvalidOptionError(
        "validation",
        "Give either validation (uploaded) or vertex.validationDatasetUri, not both",
      );
    }
    const dataset = checkDataset(request.dataset, "dataset");
    const validation = checkDataset(request.validation, "validation");
    if (dataset === undefined && vertex.trainingDatasetUri === undefined) {
      throw new InvalidOptionError(
        "dataset",
        "dataset must be a Dataset (Dataset.from(...) or await Dataset.load(path)), or name existing data with vertex.trainingDatasetUri",
      );
    }
    const needsUpload =
      (dataset !== undefined && vertex.trainingDatasetUri === undefined) ||
      validation !== undefined;
    const stagingUri = vertex.stagingUri ?? this.#stagingUri;
    let staging: GcsLocation | undefined;
    if (needsUpload) {
      if (stagingUri === undefined) {
        throw new InvalidOptionError(
          "vertex.stagingUri",
          'Vertex AI reads training data from Cloud Storage: pass a staging location (new VertexTuner({ stagingUri: "gs://bucket/prefix" }) or vertex.stagingUri), or name existing data with vertex.trainingDatasetUri',
        );
      }
      staging = parseGcsUri(stagingUri, vertex.stagingUri ? "vertex.stagingUri" : "stagingUri");
    }

    // The datasets last: every option problem is reported without scanning a large dataset first.
    const warnings: string[] = [];
    if (dataset) warnings.push(...dataset.check(vertexProfile).map((issue) => issue.reason));
    if (validation) {
      warnings.push(
        ...validation.check(vertexValidationProfile).map((issue) => `validation: ${issue.reason}`),
      );
    }

    let template: PromptTemplate | undefined;
    if (dataset) {
      const derived = templateFromExamples(dataset.examples, VERTEX_TEMPLATE_KIND);
      if (derived === "mixed") {
        warnings.push(
          "The examples carry different instructions, so no template is stored with the tuned model: pass the instruction to generate() yourself ({ instruction })",
        );
      } else if (derived) {
        template = derived;
      }
    }
    const description = encodeDescription(request.description, template);
    if (template && description === encodeDescription(request.description, undefined)) {
      warnings.push(
        "The instruction is too long to store with the tuned model: pass it to generate() yourself",
      );
    }

    const requestId = newRequestId(this.#random);
    const hyperParameters: WireSupervisedHyperParameters = {};
    if (hyper.epochCount !== undefined) hyperParameters.epochCount = String(hyper.epochCount);
    if (hyper.learningRateMultiplier !== undefined)
      hyperParameters.learningRateMultiplier = hyper.learningRateMultiplier;
    if (vertex.adapterSize !== undefined)
      hyperParameters.adapterSize = ADAPTER_SIZES[vertex.adapterSize];
    const body: WireTuningJob = {
      // A Gemini API name ("models/gemini-…") names the same model as Vertex's bare id.
      baseModel: request.baseModel.trim().replace(/^models\//, ""),
      supervisedTuningSpec: {
        ...(vertex.trainingDatasetUri ? { trainingDatasetUri: vertex.trainingDatasetUri } : {}),
        ...(vertex.validationDatasetUri
          ? { validationDatasetUri: vertex.validationDatasetUri }
          : {}),
        ...(Object.keys(hyperParameters).length > 0 ? { hyperParameters } : {}),
        ...(vertex.exportLastCheckpointOnly === undefined
          ? {}
          : { exportLastCheckpointOnly: vertex.exportLastCheckpointOnly }),
      },
      labels: { ...vertex.labels, [REQUEST_LABEL_KEY]: requestId },
    };
    if (request.displayName !== undefined) body.tunedModelDisplayName = request.displayName;
    if (description !== undefined) body.description = description;
    if (vertex.serviceAccount !== undefined) body.serviceAccount = vertex.serviceAccount;
    if (vertex.kmsKeyName !== undefined) body.encryptionSpec = { kmsKeyName: vertex.kmsKeyName };
    return {
      parent: this.parent,
      requestId,
      body,
      dataset,
      validation,
      staging,
      warnings,
    };
  }

  /** Re-attaches to a job by name (`projects/…/tuningJobs/{id}` or a bare id), e.g. after a restart. */
  async getJob(
    name: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<VertexTuningJob> {
    const parsed = parseJobName(name, this);
    const wire = await this.#api.getTuningJob(parsed.name, options);
    return new VertexTuningJob(this.#api, { ...wire, name: wire.name ?? parsed.name }, this.#watch);
  }

  /**
   * The tuned model of a tuning job (`getModel(jobName)`). It can `generate()` once the job
   * succeeded (it then has an `endpoint`).
   */
  async getModel(
    name: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<VertexTunedModel> {
    const parsed = parseJobName(name, this);
    const wire = await this.#api.getTuningJob(parsed.name, options);
    return new VertexTunedModel(this.#api, wire, parsed.name);
  }

  /**
   * Lists this location's tuning jobs (`GET v1/{parent}/tuningJobs`). Await it for one page, or
   * `for await` over every job of every page.
   */
  listJobs(options: ListJobsOptions = {}): PagePromise<WireTuningJob> {
    checkPageSize(options.pageSize);
    return new PagePromise(async (pageToken) => {
      const response = await this.#api.listTuningJobs(
        this.parent,
        { pageSize: options.pageSize, pageToken, filter: options.filter },
        { signal: options.signal },
      );
      return { items: response.tuningJobs ?? [], nextPageToken: response.nextPageToken };
    }, options.pageToken);
  }

  /**
   * The tuned models of this location's tuning jobs, one per job (`name` is the job's name;
   * `state` is `creating` while it runs, `active` once it succeeded, `failed` otherwise).
   * `filter` is Vertex's list filter.
   */
  listModels(
    options: ListModelsOptions & { pageToken?: string } = {},
  ): PagePromise<TunedModelInfo> {
    checkPageSize(options.pageSize);
    return new PagePromise(async (pageToken) => {
      const response = await this.#api.listTuningJobs(
        this.parent,
        { pageSize: options.pageSize, pageToken, filter: options.filter },
        { signal: options.signal },
      );
      return {
        items: (response.tuningJobs ?? []).map((job) => toModelInfo(job)),
        nextPageToken: response.nextPageToken,
      };
    }, options.pageToken);
  }

  /**
   * Not offered: a Vertex tuned model is a Model Registry model deployed to an endpoint, and
   * the tuningJobs API cannot delete either.
   *
   * @throws UnsupportedOptionError, always, before any request.
   */
  async deleteModel(name: string): Promise<void> {
    throw new UnsupportedOptionError(
      "vertex",
      "deleteModel",
      `Vertex AI tuning jobs cannot delete what they made: undeploy the model from its endpoint and delete the endpoint and the model with the Vertex AI Endpoints and Models APIs (or \`gcloud ai endpoints undeploy-model\` / \`gcloud ai models delete\`). See tuner.getModel("${name}") for their names`,
    );
  }
}

function checkDataset(value: unknown, path: string): Dataset | undefined {
  if (value === undefined) return undefined;
  const dataset = value as Dataset;
  if (!dataset || !Array.isArray(dataset.examples) || typeof dataset.check !== "function") {
    throw new InvalidOptionError(
      path,
      `${path} must be a Dataset (Dataset.from(...) or await Dataset.load(path))`,
    );
  }
  return dataset;
}

const vertexHints: ErrorHinter = ({ httpStatus, message, path }) => {
  if (httpStatus === 404 && path.includes("/upload/storage/")) {
    return "The staging bucket does not exist or is not visible to these credentials: create it (in the tuning location) or pass another stagingUri";
  }
  if (httpStatus === 403 && path.includes("/upload/storage/")) {
    return "The credentials may not write to the staging bucket: grant roles/storage.objectCreator on it";
  }
  if (httpStatus === 403 && /aiplatform/i.test(message)) {
    return "The caller lacks a Vertex AI permission (e.g. aiplatform.tuningJobs.create): grant roles/aiplatform.user, and check the Vertex AI API is enabled in the project";
  }
  if (httpStatus === 400 && /adapter size/i.test(message)) {
    return "This base model does not take that adapter size: leave vertex.adapterSize out or pick another";
  }
  return undefined;
};

function checkNumbers(options: VertexTunerOptions): void {
  const positive = [
    "timeoutMs",
    "deadlineMs",
    "generateTimeoutMs",
    "uploadTimeoutMs",
    "maxRetryAfterMs",
    "initialRetryDelayMs",
    "maxRetryDelayMs",
    "pollIntervalMs",
    "maxPollIntervalMs",
    "cancelTimeoutMs",
    "createRecoveryMs",
  ] as const;
  for (const key of positive) {
    const value = options[key];
    if (
      value !== undefined &&
      (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
    ) {
      throw new InvalidOptionError(key, `${key} must be a positive number, got ${String(value)}`);
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
