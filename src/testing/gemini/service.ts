/**
 * The transport-independent fake Gemini API: base models, tuned models (with simulated tuning
 * jobs under a controllable clock), their operations and permissions, generation and token
 * counting, fault injection and a request log. The msw handlers and the real HTTP server both
 * call {@link FakeGeminiService.handle}. Requests and replies follow the proto3 JSON mapping
 * (see `shared/proto-json.ts`); the resources live in the sibling modules.
 */
import { mulberry32 } from "../../core/dataset/split.js";
import { FakeClock } from "../shared/clock.js";
import { FaultInjector } from "../shared/faults.js";
import type { FakeResponder } from "../shared/generate.js";
import { errorInfoDetail, localizedMessageDetail } from "../shared/google-errors.js";
import { fail, type Reply, type RequestContext, type RouteMatch } from "../shared/http.js";
import type { SimulatedJob } from "../shared/job-simulation.js";
import { ProtoJsonCodec } from "../shared/proto-json.js";
import { FakeTuningService } from "../shared/tuning-service.js";
import { DEFAULT_BASE_MODELS, type FakeBaseModel, TUNABLE_BASE_MODEL } from "./base-models.js";
import { GEMINI_ENUM_NUMBERS } from "./enum-numbers.generated.js";
import { countTokens, countTunedTokens, generateBase, generateTuned } from "./generation.js";
import { findBaseModel, listBaseModels } from "./models.js";
import { cancelOperation, findOperation, listOperations, operationJson } from "./operations.js";
import {
  createPermission,
  deletePermission,
  getPermission,
  listPermissions,
  updatePermission,
} from "./permissions.js";
import { type FakeRoute, GEMINI_ROUTES, type GeminiRouteSpec } from "./routes.js";
import { BUNDLED_SCHEMAS } from "./schemas.js";
import { findModel, type GeminiFake, pollJob, type TunedModelRecord } from "./state.js";
import {
  createTunedModel,
  deleteTunedModel,
  listTunedModels,
  newRecord,
  patchTunedModel,
  transferOwnership,
  tunedModelJson,
} from "./tuned-models.js";

/** Options of {@link FakeGeminiService}. */
export interface FakeGeminiServiceOptions {
  /**
   * The API key requests must carry in `x-goog-api-key` (or `?key=`, which the real API also
   * accepts). `null` turns API-key checking off (any or no key is accepted).
   * @default "test-api-key"
   */
  apiKey?: string | null;
  /** Also accept `Authorization: Bearer <accessToken>` (OAuth, as ADC users send). */
  accessToken?: string;
  /** With a bearer token, require an `x-goog-user-project` header (quota project). @default false */
  requireUserProject?: boolean;
  /**
   * How a wrong API key is answered: `"permission-denied"` → 403 PERMISSION_DENIED,
   * `"api-key-invalid"` → 400 INVALID_ARGUMENT (what the live API answers for a malformed key).
   * Both carry an `ErrorInfo` with reason `API_KEY_INVALID`. A missing key is always 403.
   * @default "permission-denied"
   */
  wrongKeyResponse?: "permission-denied" | "api-key-invalid";
  /** Base models served under `models/`. @default DEFAULT_BASE_MODELS (none tunable) */
  baseModels?: readonly FakeBaseModel[];
  /** Add {@link TUNABLE_BASE_MODEL} (`models/gemini-1.5-flash-001-tuning`) to the base models. @default false */
  tuningEnabled?: boolean;
  /**
   * Make these base models tunable too (`createTunedModel` added to their
   * `supportedGenerationMethods`); ids not among the base models are added as tunable models.
   */
  tunableBaseModels?: readonly string[];
  /** A clock to share; a new {@link FakeClock} at `startTime` when absent. */
  clock?: FakeClock;
  /** Start of fake time when no clock is given. @default 2026-01-01T00:00:00Z */
  startTime?: number | Date;
  /**
   * Auto mode: each poll of a running job (`GET` of its operation or tuned model) advances that
   * job by this many steps. `0` = manual mode: jobs move only with `advance(ms)` / `tick(steps)`.
   * @default 5
   */
  stepsPerPoll?: number;
  /** Fake time one tuning step takes. @default 1000 */
  stepDurationMs?: number;
  /**
   * Answers generate calls for inputs a tuned model was not trained on, and every base-model
   * call. @default defaultResponder (`"<model name> says: <last user text>"`)
   */
  respond?: FakeResponder;
  /** Seed of the id generator (tuned-model suffixes, operation and permission ids). @default 1 */
  seed?: number;
  /**
   * Path prefix before `/v1beta/…` (when the base URL has a path, e.g. a proxy mount point).
   * @default ""
   */
  basePath?: string;
  /**
   * Also accept cancel on `v1beta/…/operations/{op}:cancel`. The real API binds cancel only
   * under `v1`, so by default the v1beta path answers 404 like the real one.
   * @default false
   */
  cancelOnV1beta?: boolean;
  /**
   * Cancel is asynchronous and best effort on the real API: the cancel call answers `{}` at
   * once, and the job runs this many more steps before its operation reports CANCELLED — or
   * finishes ACTIVE if it reaches its last step first. `0` cancels at once.
   * @default 0
   */
  cancelLatencySteps?: number;
  /** The owner's email: every new tuned model starts with an OWNER permission for it. @default "owner@example.com" */
  ownerEmail?: string;
}

/** Schema name → proto message name, for Google's error wording. */
function messageType(schema: string): string {
  return `google.ai.generativelanguage.v1beta.${schema}`;
}

/**
 * The fake Gemini API. Create one per test (or share one and call
 * {@link FakeGeminiService.reset}), then serve it through msw (`createFakeGeminiHandlers`) or a
 * real server (`startFakeGeminiServer`).
 *
 * @example
 * ```ts
 * const service = new FakeGeminiService({ tuningEnabled: true, stepsPerPoll: 0 });
 * // … client creates a tuned model …
 * service.tick(10);               // ten tuning steps pass
 * service.completeAll();          // or jump to the end
 * expect(service.requests.filter((r) => r.route === "createTunedModel")).toHaveLength(1);
 * ```
 */
export class FakeGeminiService extends FakeTuningService<FakeRoute> {
  /** The clock all timestamps come from. */
  readonly clock: FakeClock;
  /** Fault injection: `service.faults.rateLimit({ times: 2, retryAfterSeconds: 1 })`, … */
  readonly faults = new FaultInjector<FakeRoute>();
  protected readonly codec = new ProtoJsonCodec({
    schemas: BUNDLED_SCHEMAS,
    enums: GEMINI_ENUM_NUMBERS,
    messageType,
  });
  protected readonly basePath: string;
  protected readonly stepDurationMs: number;

  readonly #options: FakeGeminiServiceOptions;
  readonly #fake: GeminiFake;
  readonly #models = new Map<string, TunedModelRecord>();
  #random: () => number;

  constructor(options: FakeGeminiServiceOptions = {}) {
    super();
    this.#options = options;
    this.basePath = options.basePath ?? "";
    this.stepDurationMs = options.stepDurationMs ?? 1000;
    this.clock = options.clock ?? new FakeClock(options.startTime);
    this.#random = mulberry32(options.seed ?? 1);
    this.stepsPerPoll = options.stepsPerPoll ?? 5;
    const baseModels = baseModelsOf(options);
    this.#fake = {
      clock: this.clock,
      codec: this.codec,
      faults: this.faults,
      models: this.#models,
      baseModels,
      settings: {
        stepDurationMs: options.stepDurationMs ?? 1000,
        cancelLatencySteps: options.cancelLatencySteps ?? 0,
        respond: options.respond,
        ownerEmail: options.ownerEmail ?? "owner@example.com",
      },
      poll: (job) => this.poll(job),
      randomId: (length, digitsFirst) => this.#randomId(length, digitsFirst),
    };
    this.clock.onAdvance((elapsed) => {
      for (const record of this.#models.values()) record.job.advance(elapsed);
    });
  }

  /** The API key requests must carry (`null` when not checked). */
  get apiKey(): string | null {
    return this.#options.apiKey === undefined ? "test-api-key" : this.#options.apiKey;
  }

  /** The base models served under `models/`. */
  get baseModels(): readonly FakeBaseModel[] {
    return this.#fake.baseModels;
  }

  /** Forget every tuned model, operation, fault and logged request (the clock keeps its time). */
  reset(): void {
    this.#models.clear();
    this.faults.clear();
    this.requests.length = 0;
    this.#random = mulberry32(this.#options.seed ?? 1);
  }

  /** The tuned model as `GET tunedModels/{id}` would return it (no poll side effects), or undefined. */
  getTunedModel(nameOrId: string): Record<string, unknown> | undefined {
    const record = this.#models.get(nameOrId.replace(/^tunedModels\//, ""));
    return record === undefined ? undefined : tunedModelJson(this.#fake, record);
  }

  /** Every stored tuned model, in creation order (no poll side effects). */
  listTunedModels(): Record<string, unknown>[] {
    return [...this.#models.values()].map((record) => tunedModelJson(this.#fake, record));
  }

  /** The operation as `GET …/operations/{op}` would return it (no poll side effects), or undefined. */
  getOperation(name: string): Record<string, unknown> | undefined {
    const record = [...this.#models.values()].find((candidate) => candidate.operationName === name);
    return record === undefined ? undefined : operationJson(this.#fake, record);
  }

  /** The permissions of a tuned model, as `GET …/permissions` lists them, or undefined. */
  listPermissions(nameOrId: string): Record<string, unknown>[] | undefined {
    const record = this.#models.get(nameOrId.replace(/^tunedModels\//, ""));
    if (record === undefined) return undefined;
    return (
      listPermissions(record, { pageSize: 1000 }).body as { permissions: Record<string, unknown>[] }
    ).permissions;
  }

  /**
   * Add a tuned model directly, as if it had been created (and, unless `state` says otherwise,
   * finished) earlier — for tests of listing, generation and re-attaching.
   */
  seedTunedModel(input: {
    id: string;
    baseModel?: string;
    displayName?: string;
    description?: string;
    examples?: Array<{ textInput: string; output: string }>;
    state?: "CREATING" | "ACTIVE";
    epochCount?: number;
    batchSize?: number;
  }): Record<string, unknown> {
    const examples = input.examples ?? [{ textInput: "ping", output: "pong" }];
    const body = {
      baseModel: input.baseModel ?? TUNABLE_BASE_MODEL.name,
      ...(input.displayName === undefined ? {} : { displayName: input.displayName }),
      ...(input.description === undefined ? {} : { description: input.description }),
      tuningTask: {
        hyperparameters: {
          ...(input.epochCount === undefined ? {} : { epochCount: input.epochCount }),
          ...(input.batchSize === undefined ? {} : { batchSize: input.batchSize }),
        },
      },
    };
    if (input.state === "CREATING") {
      return tunedModelJson(this.#fake, newRecord(this.#fake, input.id, body, examples, undefined));
    }
    // Backdated so that it finished just now.
    const probe = Math.max(
      1,
      Math.ceil(
        (examples.length * (input.epochCount ?? 5)) /
          (input.batchSize ?? (examples.length < 100 ? 4 : 16)),
      ),
    );
    const durationMs = probe * this.#fake.settings.stepDurationMs;
    const record = newRecord(
      this.#fake,
      input.id,
      body,
      examples,
      undefined,
      undefined,
      this.clock.now() - durationMs,
    );
    record.job.advance(durationMs);
    return tunedModelJson(this.#fake, record);
  }

  protected simulatedJobs(): Iterable<SimulatedJob> {
    return [...this.#models.values()].map((record) => record.job);
  }

  // ---- the pipeline -----------------------------------------------------------------------

  protected route(method: string, path: string): RouteMatch<FakeRoute> | undefined {
    return this.#match(method, path)?.match;
  }

  #match(
    method: string,
    path: string,
  ): { match: RouteMatch<FakeRoute>; spec: GeminiRouteSpec } | undefined {
    const found = /^\/(v1beta|v1)\/(.*)$/.exec(path);
    if (found === null) return undefined;
    const version = found[1] as "v1" | "v1beta";
    const rest = found[2] as string;
    for (const spec of GEMINI_ROUTES) {
      if (spec.method !== method) continue;
      const versions =
        spec.name === "cancelOperation" && this.#options.cancelOnV1beta === true
          ? undefined
          : spec.versions;
      if (versions !== undefined && !versions.includes(version)) continue;
      const params = spec.pattern.exec(rest);
      if (params !== null) {
        return { match: { name: spec.name, version, params: params.slice(1) }, spec };
      }
    }
    return undefined;
  }

  protected faultMessage(status: number): string {
    if (status === 429) return "Resource has been exhausted (e.g. check quota).";
    if (status === 503) return "The model is overloaded. Please try again later.";
    return `Injected ${status} error.`;
  }

  protected authenticate(context: Pick<RequestContext<FakeRoute>, "url" | "headers">): void {
    const { url, headers } = context;
    const apiKey = this.apiKey;
    const token = this.#options.accessToken;
    if (apiKey === null && token === undefined) return;
    const authorization = headers.authorization;
    if (authorization !== undefined && /^bearer\s/i.test(authorization)) {
      const sent = authorization.replace(/^bearer\s+/i, "");
      if (token === undefined || sent !== token) {
        fail(
          "UNAUTHENTICATED",
          "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
          [
            errorInfoDetail("ACCESS_TOKEN_EXPIRED", {
              method: "google.ai.generativelanguage.v1beta.ModelService",
            }),
          ],
        );
      }
      if (
        this.#options.requireUserProject === true &&
        headers["x-goog-user-project"] === undefined
      ) {
        fail(
          "PERMISSION_DENIED",
          "Your application is authenticating by using local Application Default Credentials. The generativelanguage.googleapis.com API requires a quota project, which is not set by default.",
          [errorInfoDetail("SERVICE_DISABLED")],
        );
      }
      return;
    }
    const key = headers["x-goog-api-key"] ?? url.searchParams.get("key") ?? undefined;
    if (key === undefined || key.length === 0) {
      fail(
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      );
    }
    if (apiKey === null) return;
    if (key !== apiKey) {
      if (this.#options.wrongKeyResponse === "api-key-invalid") {
        fail("INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
          errorInfoDetail("API_KEY_INVALID"),
          localizedMessageDetail("API key not valid. Please pass a valid API key."),
        ]);
      }
      fail("PERMISSION_DENIED", "Permission denied: the API key is not valid for this API.", [
        errorInfoDetail("API_KEY_INVALID"),
      ]);
    }
  }

  protected dispatch(context: RequestContext<FakeRoute>): Reply {
    const spec = this.#match(context.method, context.path)?.spec as GeminiRouteSpec;
    const query = this.readQuery(context, spec.query);
    const body = this.readBody(context, spec.body);
    const fake = this.#fake;
    const { name, version, params } = context.route;
    const [first = "", second = ""] = params;
    switch (name) {
      case "listModels":
        return listBaseModels(fake, query);
      case "getModel":
        return { status: 200, schema: "Model", body: findBaseModel(fake, first, version) };
      case "modelGenerateContent":
      case "modelStreamGenerateContent": {
        const method =
          name === "modelGenerateContent" ? "generateContent" : "streamGenerateContent";
        const model = findBaseModel(fake, first, version, method);
        return generateBase(fake, model, body, name === "modelStreamGenerateContent");
      }
      case "modelCountTokens":
        findBaseModel(fake, first, version, "countTokens");
        return countTokens(body);
      case "createTunedModel":
        return createTunedModel(fake, body, query.tunedModelId as string | undefined);
      case "listTunedModels":
        return listTunedModels(fake, query);
      case "getTunedModel":
        return {
          status: 200,
          schema: "TunedModel",
          body: tunedModelJson(fake, pollJob(fake, findModel(fake, first))),
        };
      case "updateTunedModel":
        return patchTunedModel(
          fake,
          findModel(fake, first),
          body,
          query.updateMask as string | undefined,
        );
      case "deleteTunedModel":
        return deleteTunedModel(fake, first);
      case "transferOwnership":
        return transferOwnership(fake, findModel(fake, first), body);
      case "generateContent":
        return generateTuned(fake, findModel(fake, first, "generateContent", version), body, false);
      case "streamGenerateContent":
        return generateTuned(
          fake,
          findModel(fake, first, "streamGenerateContent", version),
          body,
          true,
        );
      case "countTokens":
        return countTunedTokens(findModel(fake, first, "countTokens", version), body);
      case "listOperations":
        return listOperations(fake, first, query);
      case "getOperation":
        return {
          status: 200,
          schema: "Operation",
          body: operationJson(fake, pollJob(fake, findOperation(fake, first, second))),
        };
      case "cancelOperation":
        return cancelOperation(fake, findOperation(fake, first, second));
      case "createPermission":
        return createPermission(fake, findModel(fake, first), body);
      case "listPermissions":
        return listPermissions(findModel(fake, first), query);
      case "getPermission":
        return getPermission(findModel(fake, first), second);
      case "updatePermission":
        return updatePermission(
          findModel(fake, first),
          second,
          body,
          query.updateMask as string | undefined,
        );
      case "deletePermission":
        return deletePermission(findModel(fake, first), second);
    }
  }

  #randomId(length: number, digitsFirst: boolean): string {
    const letters = "abcdefghijklmnopqrstuvwxyz";
    const alphabet = `${letters}0123456789`;
    let out = "";
    for (let index = 0; index < length; index += 1) {
      const pool = index === 0 && !digitsFirst ? letters : alphabet;
      out += pool[Math.floor(this.#random() * pool.length)];
    }
    return out;
  }
}

/** The base models of a service: the given (or default) ones, plus the tunable ones asked for. */
function baseModelsOf(options: FakeGeminiServiceOptions): FakeBaseModel[] {
  const models = (options.baseModels ?? DEFAULT_BASE_MODELS).map((model) => ({
    ...model,
    supportedGenerationMethods: [...model.supportedGenerationMethods],
  }));
  if (options.tuningEnabled === true && !models.some((m) => m.name === TUNABLE_BASE_MODEL.name)) {
    models.push({
      ...TUNABLE_BASE_MODEL,
      supportedGenerationMethods: [...TUNABLE_BASE_MODEL.supportedGenerationMethods],
    });
  }
  for (const wanted of options.tunableBaseModels ?? []) {
    const name = wanted.startsWith("models/") ? wanted : `models/${wanted}`;
    const existing = models.find((m) => m.name === name);
    if (existing === undefined) {
      models.push({
        name,
        baseModelId: name.slice("models/".length),
        version: "001",
        displayName: name.slice("models/".length),
        inputTokenLimit: 16384,
        outputTokenLimit: 8192,
        supportedGenerationMethods: ["generateContent", "countTokens", "createTunedModel"],
        temperature: 1,
        topP: 0.95,
        topK: 64,
      });
    } else if (!existing.supportedGenerationMethods.includes("createTunedModel")) {
      existing.supportedGenerationMethods.push("createTunedModel");
    }
  }
  return models;
}
