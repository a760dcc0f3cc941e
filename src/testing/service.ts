/**
 * The transport-independent fake Gemini tuning service: in-memory tuned models and
 * operations, a controllable clock, fault injection and a request log. The msw handlers
 * and the real HTTP server both call {@link FakeGeminiService.handle}.
 */

import { mulberry32 } from "../core/dataset/split.js";
import { DEFAULT_BASE_MODELS, type FakeBaseModel, TUNABLE_BASE_MODEL } from "./base-models.js";
import { FakeClock } from "./clock.js";
import { type FakeRoute, FaultInjector, type TuningFailureSpec } from "./faults.js";
import {
  chunkText,
  defaultResponder,
  type FakeResponder,
  type FakeResponderContext,
  fakeTokenCount,
} from "./generate.js";
import {
  badRequestDetail,
  type ErrorDetail,
  errorInfoDetail,
  type FieldViolation,
  googleError,
  localizedMessageDetail,
  RPC_CODES,
  type RpcStatusName,
  retryInfoDetail,
  statusNameForHttp,
} from "./google-errors.js";
import { type SchemaIssue, validateAgainstSchema } from "./schema-validator.js";

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
  /** Answers generate calls for inputs not seen in training. @default defaultResponder */
  respond?: FakeResponder;
  /** Seed of the id generator (tuned-model suffixes, operation ids). @default 1 */
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
}

/** A request as the transports hand it to {@link FakeGeminiService.handle}. */
export interface FakeHttpRequest {
  method: string;
  /** Absolute URL (`https://generativelanguage.googleapis.com/v1beta/tunedModels?…`). */
  url: string;
  headers?: Record<string, string | readonly string[] | undefined> | Iterable<[string, string]>;
  /** The raw body text, if any. */
  body?: string | undefined;
  /** The body's bytes, when the transport has them (binary uploads need them; `body` is their UTF-8 decoding). */
  bodyBytes?: Uint8Array | undefined;
}

/** What a transport must do with a request. */
export type FakeHttpResult =
  | { kind: "response"; status: number; headers: Record<string, string>; body: string }
  /** Close the connection without a response: `dropped` before handling, `response-lost` after. */
  | { kind: "network-error"; reason: "dropped" | "response-lost" };

/**
 * One entry of the request log ({@link FakeGeminiService.requests}). `R` is the fake's route
 * names (the Vertex fake logs its own).
 */
export interface RecordedRequest<R extends string = FakeRoute> {
  /** 1-based order of arrival. */
  seq: number;
  /** Fake time when it arrived (RFC 3339). */
  time: string;
  method: string;
  /** The URL with a `key` query parameter redacted. */
  url: string;
  /** Path without the base path, e.g. `/v1beta/tunedModels/abc`. */
  path: string;
  apiVersion: "v1" | "v1beta" | undefined;
  route: R | undefined;
  /** Query parameters (`key` redacted). */
  query: Record<string, string>;
  /** Lower-cased request headers; `x-goog-api-key`, `authorization` and `cookie` read `[redacted]`. */
  headers: Record<string, string>;
  /** Parsed JSON body, the raw text when it is not JSON, `undefined` when empty. */
  body: unknown;
  outcome: "response" | "dropped" | "response-lost";
  /** HTTP status sent (or that would have been sent for `response-lost`). */
  status: number | undefined;
  /** Parsed JSON response; for SSE streams, the array of event payloads. */
  response: unknown;
}

/** Shape of an example on the wire. */
interface WireExample {
  textInput?: string;
  output?: string;
}

type JobState = "running" | "succeeded" | "failed" | "cancelled";

interface Snapshot {
  step: number;
  epoch: number;
  meanLoss: number;
  computeTime: string;
}

interface TunedModelRecord {
  id: string;
  name: string;
  operationName: string;
  baseModel: string;
  sourceTunedModel: string | undefined;
  displayName: string | undefined;
  description: string | undefined;
  temperature: number | undefined;
  topP: number | undefined;
  topK: number | undefined;
  readerProjectNumbers: string[] | undefined;
  hyperparameters: Record<string, number>;
  examples: Array<{ textInput: string; output: string }>;
  createTime: string;
  updateTime: string;
  startTime: string;
  completeTime: string | undefined;
  totalSteps: number;
  completedSteps: number;
  elapsedMs: number;
  epochCount: number;
  snapshots: Snapshot[];
  state: JobState;
  error: { code: number; message: string } | undefined;
  failure: TuningFailureSpec | undefined;
  cancelAtStep: number | undefined;
}

interface Route {
  name: FakeRoute;
  version: "v1" | "v1beta";
  params: string[];
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Already-serialised body (SSE). */
  raw?: string;
  events?: unknown[];
}

/** Method + path (after `/v1beta/` or `/v1/`) → route. `versions` absent = both versions. */
const ROUTE_TABLE: ReadonlyArray<{
  name: FakeRoute;
  method: string;
  pattern: RegExp;
  versions?: ReadonlyArray<"v1" | "v1beta">;
}> = [
  { name: "listModels", method: "GET", pattern: /^models$/ },
  { name: "getModel", method: "GET", pattern: /^models\/([^/:]+)$/ },
  { name: "listTunedModels", method: "GET", pattern: /^tunedModels$/, versions: ["v1beta"] },
  { name: "createTunedModel", method: "POST", pattern: /^tunedModels$/, versions: ["v1beta"] },
  {
    name: "getTunedModel",
    method: "GET",
    pattern: /^tunedModels\/([^/:]+)$/,
    versions: ["v1beta"],
  },
  {
    name: "updateTunedModel",
    method: "PATCH",
    pattern: /^tunedModels\/([^/:]+)$/,
    versions: ["v1beta"],
  },
  {
    name: "deleteTunedModel",
    method: "DELETE",
    pattern: /^tunedModels\/([^/:]+)$/,
    versions: ["v1beta"],
  },
  { name: "generateContent", method: "POST", pattern: /^tunedModels\/([^/:]+):generateContent$/ },
  {
    name: "streamGenerateContent",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+):streamGenerateContent$/,
  },
  { name: "listOperations", method: "GET", pattern: /^tunedModels\/([^/:]+)\/operations$/ },
  { name: "getOperation", method: "GET", pattern: /^tunedModels\/([^/:]+)\/operations\/([^/:]+)$/ },
  {
    name: "cancelOperation",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+)\/operations\/([^/:]+):cancel$/,
  },
];

const METADATA_TYPE =
  "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata";
const TUNED_MODEL_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.TunedModel";
const TUNED_MODEL_ID = /^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$/;
const MAX_GENERATE_INPUT = 40_000;
const SECRET_HEADERS = new Set([
  "x-goog-api-key",
  "authorization",
  "cookie",
  "proxy-authorization",
]);
const JSON_HEADERS = { "content-type": "application/json; charset=UTF-8" };
const MUTABLE_FIELDS = new Set([
  "displayName",
  "description",
  "temperature",
  "topP",
  "topK",
  "readerProjectNumbers",
]);

/** @internal A Google error reply thrown inside a fake's handlers. */
export class HttpFailure extends Error {
  constructor(
    readonly httpStatus: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${httpStatus}`);
  }
}

/** @internal Throws a Google error reply. */
export function fail(status: RpcStatusName, message: string, details: ErrorDetail[] = []): never {
  const { httpStatus, body } = googleError(status, message, details);
  throw new HttpFailure(httpStatus, body);
}

/** @internal Throws 400 INVALID_ARGUMENT with a BadRequest detail listing `violations`. */
export function invalid(message: string, violations: FieldViolation[] = []): never {
  fail("INVALID_ARGUMENT", message, violations.length > 0 ? [badRequestDetail(violations)] : []);
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** @internal proto3 JSON parsers accept the proto (snake_case) names too; normalise them to camelCase. */
export function camelizeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelizeKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value))
      out[key.startsWith("@") ? key : camelCase(key)] = camelizeKeys(inner);
    return out;
  }
  return value;
}

/** `$.tuningTask.hyperparameters` → `tuned_model.tuning_task.hyperparameters` (Google's error paths). */
function protoPath(path: string, root: string): string {
  const rest = path.replace(/^\$\.?/, "").replace(/\[(\d+)\]/g, "[$1]");
  const snake = rest
    .split(".")
    .filter((part) => part.length > 0)
    .map(snakeCase)
    .join(".");
  return snake.length > 0 ? `${root}.${snake}` : root;
}

/** @internal Schema issues as Google's "Invalid JSON payload" field violations. */
export function schemaViolations(
  issues: SchemaIssue[],
  root: string,
): { message: string; violations: FieldViolation[] } {
  const violations = issues.map((issue) => {
    const parent = issue.path.replace(/(\.[^.[\]]+|\[[^\]]+\])$/, "");
    const field = issue.path.slice(parent.length).replace(/^\./, "");
    const description =
      issue.code === "unknown_field"
        ? `Invalid JSON payload received. Unknown name "${field}" at '${protoPath(parent, root)}': Cannot find field.`
        : `Invalid value at '${protoPath(issue.path, root)}': ${issue.message}`;
    return {
      field: protoPath(issue.code === "unknown_field" ? parent : issue.path, root),
      description,
    };
  });
  return { message: violations.map((violation) => violation.description).join("\n"), violations };
}

/** @internal */
export function normalizeHeaders(headers: FakeHttpRequest["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  const entries: Iterable<[string, unknown]> =
    Symbol.iterator in headers
      ? (headers as Iterable<[string, string]>)
      : Object.entries(headers as Record<string, unknown>);
  for (const [key, value] of entries) {
    if (value === undefined) continue;
    out[key.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The fake Gemini tuning service. Create one per test (or share one and call
 * {@link FakeGeminiService.reset}), then serve it through msw
 * (`createFakeGeminiHandlers`) or a real server (`startFakeGeminiServer`).
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
export class FakeGeminiService {
  /** The clock all timestamps come from. */
  readonly clock: FakeClock;
  /** Fault injection: `service.faults.rateLimit({ times: 2, retryAfterSeconds: 1 })`, … */
  readonly faults = new FaultInjector();
  /** Every request received, in order (secrets redacted). */
  readonly requests: RecordedRequest[] = [];

  readonly #options: FakeGeminiServiceOptions;
  readonly #models = new Map<string, TunedModelRecord>();
  readonly #baseModels: FakeBaseModel[];
  #random: () => number;
  #stepsPerPoll: number;

  constructor(options: FakeGeminiServiceOptions = {}) {
    this.#options = options;
    this.clock = options.clock ?? new FakeClock(options.startTime);
    this.#baseModels = [...(options.baseModels ?? DEFAULT_BASE_MODELS)];
    if (
      options.tuningEnabled === true &&
      !this.#baseModels.some((m) => m.name === TUNABLE_BASE_MODEL.name)
    ) {
      this.#baseModels.push(TUNABLE_BASE_MODEL);
    }
    this.#random = mulberry32(options.seed ?? 1);
    this.#stepsPerPoll = 5;
    this.stepsPerPoll = options.stepsPerPoll ?? 5;
    this.clock.onAdvance((elapsed) => {
      for (const record of this.#models.values()) this.#progress(record, elapsed);
    });
  }

  /** The API key requests must carry (`null` when not checked). */
  get apiKey(): string | null {
    return this.#options.apiKey === undefined ? "test-api-key" : this.#options.apiKey;
  }

  /** Steps a poll advances a running job by (0 = manual mode). */
  get stepsPerPoll(): number {
    return this.#stepsPerPoll;
  }

  set stepsPerPoll(steps: number) {
    if (!Number.isInteger(steps) || steps < 0)
      throw new RangeError(`stepsPerPoll must be an integer ≥ 0, got ${steps}`);
    this.#stepsPerPoll = steps;
  }

  get #stepMs(): number {
    return this.#options.stepDurationMs ?? 1000;
  }

  /** Move fake time forward; running jobs progress one step per `stepDurationMs`. */
  advance(ms: number): void {
    this.clock.advance(ms);
  }

  /** Move fake time forward by `steps` tuning steps. */
  tick(steps = 1): void {
    this.clock.advance(steps * this.#stepMs);
  }

  /** Run every running job to its end (success, or its planned failure), moving fake time on. */
  completeAll(): void {
    let remainingMs = 0;
    for (const record of this.#models.values()) {
      if (record.state !== "running") continue;
      remainingMs = Math.max(remainingMs, record.totalSteps * this.#stepMs - record.elapsedMs);
    }
    if (remainingMs > 0) this.clock.advance(remainingMs);
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
    return record === undefined ? undefined : this.#tunedModelJson(record);
  }

  /** Every stored tuned model, in creation order (no poll side effects). */
  listTunedModels(): Record<string, unknown>[] {
    return [...this.#models.values()].map((record) => this.#tunedModelJson(record));
  }

  /** The operation as `GET …/operations/{op}` would return it (no poll side effects), or undefined. */
  getOperation(name: string): Record<string, unknown> | undefined {
    const record = [...this.#models.values()].find((candidate) => candidate.operationName === name);
    return record === undefined ? undefined : this.#operationJson(record);
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
    const record = this.#newRecord(
      input.id,
      {
        baseModel: input.baseModel ?? TUNABLE_BASE_MODEL.name,
        ...(input.displayName === undefined ? {} : { displayName: input.displayName }),
        ...(input.description === undefined ? {} : { description: input.description }),
        tuningTask: {
          hyperparameters: {
            ...(input.epochCount === undefined ? {} : { epochCount: input.epochCount }),
            ...(input.batchSize === undefined ? {} : { batchSize: input.batchSize }),
          },
        },
      },
      examples,
      undefined,
    );
    if (input.state !== "CREATING") {
      // Backdate it so that it finished just now.
      const durationMs = record.totalSteps * this.#stepMs;
      const start = new Date(this.clock.now() - durationMs).toISOString();
      record.createTime = start;
      record.startTime = start;
      this.#progress(record, durationMs);
    }
    return this.#tunedModelJson(record);
  }

  /**
   * Handle one HTTP request. Resolves to the response to send, or to a network error the
   * transport must produce (close the socket / `HttpResponse.error()`). Never rejects.
   */
  async handle(request: FakeHttpRequest): Promise<FakeHttpResult> {
    const method = request.method.toUpperCase();
    const headers = normalizeHeaders(request.headers);
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      url = new URL(request.url, "http://127.0.0.1");
    }
    let path = decodeURIComponent(url.pathname);
    const basePath = (this.#options.basePath ?? "").replace(/\/+$/, "");
    if (basePath.length > 0 && path.startsWith(basePath)) path = path.slice(basePath.length) || "/";
    const route = this.#route(method, path);
    const entry = this.#record(method, url, path, route, headers, request.body);

    for (const action of this.faults.take(route?.name, method)) {
      if (action.kind === "delay") {
        await sleep(action.ms);
        continue;
      }
      if (action.kind === "drop") {
        entry.outcome = "dropped";
        return { kind: "network-error", reason: "dropped" };
      }
      if (action.kind === "error") {
        const reply = this.#faultReply(action.status, action.retryAfterSeconds, action.message);
        return this.#finish(entry, reply);
      }
      // lose-response: handle for real, then drop the answer.
      const reply = this.#dispatch(method, route, url, headers, request.body);
      entry.outcome = "response-lost";
      entry.status = reply.status;
      entry.response = reply.events ?? reply.body;
      return { kind: "network-error", reason: "response-lost" };
    }
    return this.#finish(entry, this.#dispatch(method, route, url, headers, request.body));
  }

  #finish(entry: RecordedRequest, reply: Reply): FakeHttpResult {
    entry.outcome = "response";
    entry.status = reply.status;
    entry.response = reply.events ?? reply.body;
    const body = reply.raw ?? JSON.stringify(reply.body);
    return {
      kind: "response",
      status: reply.status,
      headers: { ...JSON_HEADERS, ...reply.headers },
      body,
    };
  }

  #faultReply(
    status: number,
    retryAfterSeconds: number | undefined,
    message: string | undefined,
  ): Reply {
    const name = statusNameForHttp(status);
    const details: ErrorDetail[] = [];
    const headers: Record<string, string> = {};
    if (retryAfterSeconds !== undefined) {
      headers["retry-after"] = String(retryAfterSeconds);
      details.push(retryInfoDetail(retryAfterSeconds));
    }
    const defaultMessage =
      status === 429
        ? "Resource has been exhausted (e.g. check quota)."
        : status === 503
          ? "The model is overloaded. Please try again later."
          : `Injected ${name} error.`;
    const { body } = googleError(name, message ?? defaultMessage, details, status);
    return { status, body, headers };
  }

  #record(
    method: string,
    url: URL,
    path: string,
    route: Route | undefined,
    headers: Record<string, string>,
    body: string | undefined,
  ): RecordedRequest {
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) query[key] = key === "key" ? "[redacted]" : value;
    const safeUrl = new URL(url.href);
    if (safeUrl.searchParams.has("key")) safeUrl.searchParams.set("key", "[redacted]");
    const safeHeaders: Record<string, string> = {};
    for (const [key, value] of Object.entries(headers))
      safeHeaders[key] = SECRET_HEADERS.has(key) ? "[redacted]" : value;
    let parsed: unknown;
    if (body !== undefined && body.length > 0) {
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = body;
      }
    }
    const entry: RecordedRequest = {
      seq: this.requests.length + 1,
      time: this.clock.iso(),
      method,
      url: safeUrl.href,
      path,
      apiVersion:
        route?.version ?? (/^\/(v1beta|v1)\//.exec(path)?.[1] as "v1" | "v1beta" | undefined),
      route: route?.name,
      query,
      headers: safeHeaders,
      body: parsed,
      outcome: "response",
      status: undefined,
      response: undefined,
    };
    this.requests.push(entry);
    return entry;
  }

  #route(method: string, path: string): Route | undefined {
    const match = /^\/(v1beta|v1)\/(.*)$/.exec(path);
    if (match === null) return undefined;
    const version = match[1] as "v1" | "v1beta";
    const rest = match[2]!;
    const cancelAllowed = version === "v1" || this.#options.cancelOnV1beta === true;
    for (const candidate of ROUTE_TABLE) {
      if (candidate.method !== method) continue;
      if (candidate.versions !== undefined && !candidate.versions.includes(version)) continue;
      if (candidate.name === "cancelOperation" && !cancelAllowed) continue;
      const found = candidate.pattern.exec(rest);
      if (found !== null)
        return { name: candidate.name, version, params: found.slice(1) as string[] };
    }
    return undefined;
  }

  #dispatch(
    method: string,
    route: Route | undefined,
    url: URL,
    headers: Record<string, string>,
    rawBody: string | undefined,
  ): Reply {
    try {
      this.#authenticate(url, headers);
      if (route === undefined) {
        fail("NOT_FOUND", `Method not found: ${method} ${url.pathname}`);
      }
      const body = this.#parseBody(rawBody, route.name);
      const query = url.searchParams;
      const [first = "", second = ""] = route.params;
      switch (route.name) {
        case "listModels":
          return this.#listModels(query);
        case "getModel":
          return { status: 200, body: this.#getBaseModel(first, route.version) };
        case "createTunedModel":
          return this.#create(body, query.get("tunedModelId") ?? undefined);
        case "listTunedModels":
          return this.#listTunedModels(query);
        case "getTunedModel":
          return { status: 200, body: this.#tunedModelJson(this.#poll(this.#find(first))) };
        case "updateTunedModel":
          return this.#patch(
            this.#find(first),
            body,
            query.get("updateMask") ?? query.get("update_mask") ?? undefined,
          );
        case "deleteTunedModel":
          this.#find(first);
          this.#models.delete(first);
          return { status: 200, body: {} };
        case "listOperations":
          return this.#listOperations(this.#find(first), query);
        case "getOperation":
          return {
            status: 200,
            body: this.#operationJson(this.#poll(this.#findOperation(first, second))),
          };
        case "cancelOperation":
          this.#cancel(this.#findOperation(first, second));
          return { status: 200, body: {} };
        case "generateContent":
          return this.#generate(
            this.#find(first, "generateContent", route.version),
            body,
            false,
            query,
          );
        case "streamGenerateContent":
          return this.#generate(
            this.#find(first, "streamGenerateContent", route.version),
            body,
            true,
            query,
          );
      }
    } catch (error) {
      if (error instanceof HttpFailure) {
        return { status: error.httpStatus, body: error.body, headers: error.headers };
      }
      const { httpStatus, body } = googleError("INTERNAL", "Internal error encountered.");
      return { status: httpStatus, body };
    }
  }

  #authenticate(url: URL, headers: Record<string, string>): void {
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

  #parseBody(raw: string | undefined, route: FakeRoute): unknown {
    if (raw === undefined || raw.trim().length === 0) return undefined;
    try {
      return JSON.parse(raw);
    } catch (error) {
      invalid(
        `Invalid JSON payload received. ${error instanceof Error ? error.message : "Unexpected token."}`,
        [{ field: "", description: `Invalid JSON payload received for ${route}.` }],
      );
    }
  }

  #validate(body: unknown, schemaName: string, root: string): Record<string, unknown> {
    if (!isRecord(body)) invalid(`Invalid JSON payload received. Expected an object for ${root}.`);
    const normalized = camelizeKeys(body) as Record<string, unknown>;
    const result = validateAgainstSchema(normalized, schemaName);
    if (!result.valid) {
      const { message, violations } = schemaViolations(result.issues, root);
      invalid(message, violations);
    }
    return normalized;
  }

  // ---- models -------------------------------------------------------------------------

  #getBaseModel(id: string, version: string): FakeBaseModel {
    const model = this.#baseModels.find((candidate) => candidate.name === `models/${id}`);
    if (model === undefined) {
      fail(
        "NOT_FOUND",
        `models/${id} is not found for API version ${version}, or is not supported for getModel. Call ListModels to see the list of available models and their supported methods.`,
      );
    }
    return model;
  }

  #listModels(query: URLSearchParams): Reply {
    const { items, nextPageToken } = this.#page(this.#baseModels, query, "", 50);
    return {
      status: 200,
      body: { models: items, ...(nextPageToken === undefined ? {} : { nextPageToken }) },
    };
  }

  // ---- create -------------------------------------------------------------------------

  #create(rawBody: unknown, requestedId: string | undefined): Reply {
    const body = this.#validate(rawBody ?? {}, "TunedModel", "tuned_model");
    const task = isRecord(body.tuningTask) ? body.tuningTask : undefined;
    const hyper = task !== undefined && isRecord(task.hyperparameters) ? task.hyperparameters : {};
    const violations: FieldViolation[] = [];
    const require = (field: string, description: string) => violations.push({ field, description });

    if (requestedId !== undefined && !TUNED_MODEL_ID.test(requestedId)) {
      invalid(
        `tuned_model_id "${requestedId}" is invalid: it must match [a-z]([a-z0-9-]{0,38}[a-z0-9])? (at most 40 characters).`,
        [{ field: "tuned_model_id", description: "must match [a-z]([a-z0-9-]{0,38}[a-z0-9])?" }],
      );
    }
    if ("learningRate" in hyper && "learningRateMultiplier" in hyper) {
      invalid(
        "Invalid value at 'tuned_model.tuning_task.hyperparameters': oneof field 'learning_rate_option' is already set. Cannot set 'learningRateMultiplier'.",
        [
          {
            field: "tuned_model.tuning_task.hyperparameters.learning_rate_multiplier",
            description:
              "Only one of learning_rate and learning_rate_multiplier may be set (oneof learning_rate_option).",
          },
        ],
      );
    }
    const hasBase = typeof body.baseModel === "string" && body.baseModel.length > 0;
    const source = isRecord(body.tunedModelSource) ? body.tunedModelSource : undefined;
    if (hasBase && source !== undefined) {
      invalid(
        "Invalid value at 'tuned_model': oneof field 'source_model' is already set. Cannot set 'tunedModelSource'.",
        [
          {
            field: "tuned_model.tuned_model_source",
            description: "Only one of base_model and tuned_model_source may be set.",
          },
        ],
      );
    }
    if (!hasBase && source === undefined)
      require("tuned_model.base_model", "A base model (or tuned_model_source) is required.");
    if (task === undefined)
      require("tuned_model.tuning_task", "Required field tuning_task is missing.");
    const data = task !== undefined && isRecord(task.trainingData) ? task.trainingData : undefined;
    if (task !== undefined && data === undefined) {
      require("tuned_model.tuning_task.training_data", "Required field training_data is missing.");
    }
    const examplesSet = data !== undefined && isRecord(data.examples) ? data.examples : undefined;
    if (data !== undefined && examplesSet === undefined) {
      require("tuned_model.tuning_task.training_data.examples", "Training data must contain inline examples.");
    }
    if (examplesSet !== undefined && Array.isArray(examplesSet.multiturnExamples)) {
      require("tuned_model.tuning_task.training_data.examples.multiturn_examples", "Multi-turn examples are not supported for this base model; use examples with text_input and output.");
    }
    const wireExamples = (
      examplesSet !== undefined && Array.isArray(examplesSet.examples) ? examplesSet.examples : []
    ) as WireExample[];
    if (
      examplesSet !== undefined &&
      wireExamples.length === 0 &&
      !Array.isArray(examplesSet.multiturnExamples)
    ) {
      require("tuned_model.tuning_task.training_data.examples.examples", "At least one training example is required.");
    }
    wireExamples.forEach((example, index) => {
      const at = `tuned_model.tuning_task.training_data.examples.examples[${index}]`;
      if (typeof example.textInput !== "string")
        require(`${at}.text_input`, "Required field text_input is missing.");
      if (typeof example.output !== "string" || example.output.length === 0) {
        require(`${at}.output`, "Required field output is missing or empty.");
      }
    });
    if (typeof body.displayName === "string" && body.displayName.length > 40) {
      require("tuned_model.display_name", "The display name must be at most 40 characters.");
    }
    if (typeof body.temperature === "number" && (body.temperature < 0 || body.temperature > 1)) {
      require("tuned_model.temperature", "temperature must be in [0.0, 1.0].");
    }
    for (const field of ["epochCount", "batchSize"] as const) {
      const value = hyper[field];
      if (typeof value === "number" && value <= 0)
        require(`tuned_model.tuning_task.hyperparameters.${snakeCase(field)}`, `${field} must be positive.`);
    }
    for (const field of ["learningRate", "learningRateMultiplier"] as const) {
      const value = hyper[field];
      if (typeof value === "number" && value <= 0)
        require(`tuned_model.tuning_task.hyperparameters.${snakeCase(field)}`, `${field} must be positive.`);
    }
    if (violations.length > 0) {
      invalid(
        violations.map((violation) => `${violation.field}: ${violation.description}`).join("\n"),
        violations,
      );
    }

    let baseModel: string;
    let sourceTunedModel: string | undefined;
    if (source !== undefined) {
      const sourceName = String(source.tunedModel ?? "");
      const sourceRecord = this.#models.get(sourceName.replace(/^tunedModels\//, ""));
      if (sourceRecord === undefined)
        fail("NOT_FOUND", `Tuned model ${sourceName} does not exist.`);
      if (sourceRecord.state !== "succeeded") {
        fail(
          "FAILED_PRECONDITION",
          `Tuned model ${sourceName} is not ACTIVE and cannot be used as a tuning source.`,
        );
      }
      baseModel = sourceRecord.baseModel;
      sourceTunedModel = sourceRecord.name;
    } else {
      baseModel = String(body.baseModel);
      const baseId = baseModel.replace(/^models\//, "");
      const base = this.#baseModels.find((candidate) => candidate.name === `models/${baseId}`);
      if (base === undefined) {
        fail(
          "NOT_FOUND",
          `${baseModel} is not found for API version v1beta, or is not supported for createTunedModel. Call ListModels to see the list of available models and their supported methods.`,
        );
      }
      if (!base.supportedGenerationMethods.includes("createTunedModel")) {
        invalid(
          `Base model ${base.name} does not support tuning (createTunedModel is not in its supportedGenerationMethods).`,
          [
            {
              field: "tuned_model.base_model",
              description: `${base.name} does not support createTunedModel.`,
            },
          ],
        );
      }
      baseModel = base.name;
    }

    const id =
      requestedId ??
      this.#generateId(typeof body.displayName === "string" ? body.displayName : undefined);
    if (this.#models.has(id))
      fail("ALREADY_EXISTS", `Tuned model tunedModels/${id} already exists.`);
    const examples = wireExamples.map((example) => ({
      textInput: example.textInput ?? "",
      output: example.output ?? "",
    }));
    const record = this.#newRecord(id, body, examples, sourceTunedModel, baseModel);
    return {
      status: 200,
      body: {
        name: record.operationName,
        metadata: {
          "@type": METADATA_TYPE,
          totalSteps: record.totalSteps,
          tunedModel: record.name,
        },
      },
    };
  }

  #newRecord(
    id: string,
    body: Record<string, unknown>,
    examples: Array<{ textInput: string; output: string }>,
    sourceTunedModel: string | undefined,
    baseModel = String(body.baseModel ?? TUNABLE_BASE_MODEL.name),
  ): TunedModelRecord {
    const task = isRecord(body.tuningTask) ? body.tuningTask : {};
    const hyper = isRecord(task.hyperparameters)
      ? (task.hyperparameters as Record<string, number>)
      : {};
    const epochCount = hyper.epochCount ?? 5;
    const batchSize = hyper.batchSize ?? (examples.length < 100 ? 4 : 16);
    const hyperparameters: Record<string, number> = { epochCount, batchSize };
    if (hyper.learningRateMultiplier !== undefined)
      hyperparameters.learningRateMultiplier = hyper.learningRateMultiplier;
    else
      hyperparameters.learningRate = hyper.learningRate ?? (examples.length < 100 ? 0.0002 : 0.001);
    const now = this.clock.iso();
    const record: TunedModelRecord = {
      id,
      name: `tunedModels/${id}`,
      operationName: `tunedModels/${id}/operations/${this.#randomId(12, false)}`,
      baseModel,
      sourceTunedModel,
      displayName: typeof body.displayName === "string" ? body.displayName : undefined,
      description: typeof body.description === "string" ? body.description : undefined,
      temperature: typeof body.temperature === "number" ? body.temperature : undefined,
      topP: typeof body.topP === "number" ? body.topP : undefined,
      topK: typeof body.topK === "number" ? body.topK : undefined,
      readerProjectNumbers: Array.isArray(body.readerProjectNumbers)
        ? (body.readerProjectNumbers as string[])
        : undefined,
      hyperparameters,
      examples,
      createTime: now,
      updateTime: now,
      startTime: now,
      completeTime: undefined,
      totalSteps: Math.max(1, Math.ceil((examples.length * epochCount) / batchSize)),
      completedSteps: 0,
      elapsedMs: 0,
      epochCount,
      snapshots: [],
      state: "running",
      error: undefined,
      failure: this.faults.takeTuningFailure(id),
      cancelAtStep: undefined,
    };
    this.#models.set(id, record);
    return record;
  }

  #generateId(displayName: string | undefined): string {
    const words = (displayName ?? "")
      .toLowerCase()
      .split(/[^a-z0-9]+/)
      .filter((word) => word.length > 0);
    let stem = words
      .join("-")
      .replace(/^[^a-z]+/, "")
      .slice(0, 33)
      .replace(/-+$/, "");
    for (;;) {
      const id = stem.length > 0 ? `${stem}-${this.#randomId(5, true)}` : this.#randomId(11, false);
      if (!this.#models.has(id)) return id;
      stem = stem.slice(0, 30);
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

  // ---- progress -----------------------------------------------------------------------

  /** A poll in auto mode advances the job (and time) by `stepsPerPoll` steps. */
  #poll(record: TunedModelRecord): TunedModelRecord {
    if (record.state === "running" && this.#stepsPerPoll > 0) {
      const ms = this.#stepsPerPoll * this.#stepMs;
      this.clock.skip(ms);
      this.#progress(record, ms);
    }
    return record;
  }

  #progress(record: TunedModelRecord, elapsedMs: number): void {
    if (record.state !== "running") return;
    record.elapsedMs += elapsedMs;
    const target = Math.min(record.totalSteps, Math.floor(record.elapsedMs / this.#stepMs));
    const startMs = Date.parse(record.startTime);
    while (record.completedSteps < target) {
      const step = record.completedSteps + 1;
      const computeTime = new Date(startMs + step * this.#stepMs).toISOString();
      record.completedSteps = step;
      record.snapshots.push({
        step,
        epoch: Math.min(
          record.epochCount,
          Math.ceil((step * record.epochCount) / record.totalSteps),
        ),
        meanLoss: fakeLoss(step, record.totalSteps),
        computeTime,
      });
      if (record.failure !== undefined && step >= record.failure.atStep) {
        const status = record.failure.status ?? "INTERNAL";
        record.state = "failed";
        record.error = {
          code: RPC_CODES[status],
          message: record.failure.message ?? `Tuning failed at step ${step}.`,
        };
        record.completeTime = computeTime;
        record.updateTime = computeTime;
        return;
      }
      if (
        record.cancelAtStep !== undefined &&
        step >= record.cancelAtStep &&
        step < record.totalSteps
      ) {
        this.#markCancelled(record, computeTime);
        return;
      }
      if (step === record.totalSteps) {
        record.state = "succeeded";
        record.completeTime = computeTime;
        record.updateTime = computeTime;
      }
    }
  }

  #cancel(record: TunedModelRecord): void {
    if (record.state !== "running" || record.cancelAtStep !== undefined) return;
    const latency = this.#options.cancelLatencySteps ?? 0;
    if (latency > 0) {
      record.cancelAtStep = record.completedSteps + latency;
      return;
    }
    this.#markCancelled(record, this.clock.iso());
  }

  #markCancelled(record: TunedModelRecord, time: string): void {
    record.state = "cancelled";
    record.error = { code: RPC_CODES.CANCELLED, message: "Operation cancelled." };
    record.completeTime = time;
    record.updateTime = time;
  }

  // ---- JSON views ---------------------------------------------------------------------

  #tunedModelJson(record: TunedModelRecord): Record<string, unknown> {
    const base = this.#baseModels.find((candidate) => candidate.name === record.baseModel);
    const state =
      record.state === "running" ? "CREATING" : record.state === "succeeded" ? "ACTIVE" : "FAILED";
    const tuningTask: Record<string, unknown> = { startTime: record.startTime };
    if (record.completeTime !== undefined) tuningTask.completeTime = record.completeTime;
    if (record.snapshots.length > 0)
      tuningTask.snapshots = record.snapshots.map((snapshot) => ({ ...snapshot }));
    tuningTask.hyperparameters = { ...record.hyperparameters };
    const json: Record<string, unknown> = { name: record.name };
    if (record.sourceTunedModel !== undefined) {
      json.tunedModelSource = { tunedModel: record.sourceTunedModel, baseModel: record.baseModel };
    } else {
      json.baseModel = record.baseModel;
    }
    if (record.displayName !== undefined) json.displayName = record.displayName;
    if (record.description !== undefined) json.description = record.description;
    const temperature = record.temperature ?? base?.temperature;
    const topP = record.topP ?? base?.topP;
    const topK = record.topK ?? base?.topK;
    if (temperature !== undefined) json.temperature = temperature;
    if (topP !== undefined) json.topP = topP;
    if (topK !== undefined) json.topK = topK;
    json.state = state;
    json.createTime = record.createTime;
    json.updateTime = record.updateTime;
    json.tuningTask = tuningTask;
    if (record.readerProjectNumbers !== undefined)
      json.readerProjectNumbers = [...record.readerProjectNumbers];
    return json;
  }

  #operationJson(record: TunedModelRecord): Record<string, unknown> {
    const metadata: Record<string, unknown> = {
      "@type": METADATA_TYPE,
      totalSteps: record.totalSteps,
      tunedModel: record.name,
    };
    if (record.completedSteps > 0) {
      metadata.completedSteps = record.completedSteps;
      metadata.completedPercent =
        Math.round((record.completedSteps / record.totalSteps) * 1e6) / 1e4;
      metadata.snapshots = record.snapshots.map((snapshot) => ({ ...snapshot }));
    }
    const json: Record<string, unknown> = { name: record.operationName, metadata };
    if (record.state === "succeeded") {
      json.done = true;
      json.response = { "@type": TUNED_MODEL_TYPE, ...this.#tunedModelJson(record) };
    } else if (record.state !== "running") {
      json.done = true;
      json.error = { ...record.error, details: [] };
    }
    return json;
  }

  // ---- get / list / patch -------------------------------------------------------------

  #find(id: string, method?: string, version?: string): TunedModelRecord {
    const record = this.#models.get(id);
    if (record === undefined) {
      if (method !== undefined) {
        fail(
          "NOT_FOUND",
          `tunedModels/${id} is not found for API version ${version ?? "v1beta"}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
        );
      }
      fail("NOT_FOUND", `Tuned model tunedModels/${id} does not exist.`);
    }
    return record;
  }

  #findOperation(modelId: string, operationId: string): TunedModelRecord {
    const record = this.#models.get(modelId);
    const name = `tunedModels/${modelId}/operations/${operationId}`;
    if (record === undefined || record.operationName !== name)
      fail("NOT_FOUND", `Operation ${name} does not exist.`);
    return record;
  }

  #page<T>(all: readonly T[], query: URLSearchParams, filter: string, defaultSize: number) {
    const rawSize = query.get("pageSize") ?? query.get("page_size");
    let pageSize = defaultSize;
    if (rawSize !== null) {
      const parsed = Number(rawSize);
      if (!Number.isInteger(parsed) || parsed < 0) {
        invalid(`Invalid value for page_size: "${rawSize}".`, [
          { field: "page_size", description: "must be a non-negative integer" },
        ]);
      }
      pageSize = parsed === 0 ? defaultSize : Math.min(parsed, 1000);
    }
    const token = query.get("pageToken") ?? query.get("page_token") ?? "";
    let offset = 0;
    if (token.length > 0) {
      let decoded: { o?: unknown; f?: unknown } | undefined;
      try {
        decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as {
          o?: unknown;
          f?: unknown;
        };
      } catch {
        decoded = undefined;
      }
      if (decoded === undefined || typeof decoded.o !== "number") {
        invalid("Invalid page token.", [
          { field: "page_token", description: "The page token is not valid." },
        ]);
      }
      if (decoded.f !== filter) {
        invalid(
          "The page token does not match the request: send the same filter with page_token.",
          [
            {
              field: "page_token",
              description: "Request parameters differ from the ones the token was issued for.",
            },
          ],
        );
      }
      offset = decoded.o;
    }
    const items = all.slice(offset, offset + pageSize);
    const next = offset + pageSize;
    const nextPageToken =
      next < all.length
        ? Buffer.from(JSON.stringify({ o: next, f: filter }), "utf8").toString("base64url")
        : undefined;
    return { items, nextPageToken };
  }

  #listTunedModels(query: URLSearchParams): Reply {
    const filter = query.get("filter") ?? "";
    const terms = filter
      .split(/\s+/)
      .filter((term) => term.length > 0 && !term.includes(":"))
      .map((term) => term.toLowerCase());
    const matching = [...this.#models.values()].filter((record) => {
      const text = `${record.displayName ?? ""} ${record.description ?? ""}`.toLowerCase();
      return terms.every((term) => text.includes(term));
    });
    const { items, nextPageToken } = this.#page(matching, query, filter, 10);
    const body: Record<string, unknown> = {
      tunedModels: items.map((record) => this.#tunedModelJson(record)),
    };
    if (nextPageToken !== undefined) body.nextPageToken = nextPageToken;
    return { status: 200, body };
  }

  #listOperations(record: TunedModelRecord, query: URLSearchParams): Reply {
    const { items, nextPageToken } = this.#page([record], query, query.get("filter") ?? "", 10);
    const body: Record<string, unknown> = {
      operations: items.map((item) => this.#operationJson(item)),
    };
    if (nextPageToken !== undefined) body.nextPageToken = nextPageToken;
    return { status: 200, body };
  }

  #patch(record: TunedModelRecord, rawBody: unknown, updateMask: string | undefined): Reply {
    const body = this.#validate(rawBody ?? {}, "TunedModel", "tuned_model");
    const paths =
      updateMask === undefined
        ? Object.keys(body).filter((key) => MUTABLE_FIELDS.has(key))
        : updateMask
            .split(",")
            .map((path) => camelCase(path.trim()))
            .filter((path) => path.length > 0);
    for (const path of paths) {
      if (!MUTABLE_FIELDS.has(path)) {
        invalid(`Field "${snakeCase(path)}" cannot be updated (it is immutable or output only).`, [
          {
            field: `update_mask`,
            description: `"${snakeCase(path)}" is not an updatable field of TunedModel.`,
          },
        ]);
      }
    }
    if (typeof body.displayName === "string" && body.displayName.length > 40) {
      invalid("The display name must be at most 40 characters.", [
        { field: "tuned_model.display_name", description: "at most 40 characters" },
      ]);
    }
    for (const path of paths) {
      const value = body[path];
      switch (path) {
        case "displayName":
        case "description":
          record[path] = typeof value === "string" && value.length > 0 ? value : undefined;
          break;
        case "temperature":
        case "topP":
        case "topK":
          record[path] = typeof value === "number" ? value : undefined;
          break;
        case "readerProjectNumbers":
          record.readerProjectNumbers = Array.isArray(value) ? (value as string[]) : undefined;
          break;
      }
    }
    record.updateTime = this.clock.iso();
    return { status: 200, body: this.#tunedModelJson(record) };
  }

  // ---- generate -----------------------------------------------------------------------

  #generate(
    record: TunedModelRecord,
    rawBody: unknown,
    stream: boolean,
    query: URLSearchParams,
  ): Reply {
    const body = this.#validate(
      rawBody ?? {},
      "GenerateContentRequest",
      "generate_content_request",
    );
    if (record.state !== "succeeded") {
      fail(
        "FAILED_PRECONDITION",
        `Tuned model ${record.name} is not ready: its state is ${record.state === "running" ? "CREATING" : "FAILED"}.`,
      );
    }
    if (body.systemInstruction !== undefined) {
      invalid(`Developer instruction is not enabled for ${record.name}.`, [
        {
          field: "system_instruction",
          description: "Tuned models do not support system instructions.",
        },
      ]);
    }
    const config = isRecord(body.generationConfig) ? body.generationConfig : {};
    if (
      config.responseMimeType === "application/json" ||
      config.responseSchema !== undefined ||
      config.responseJsonSchema !== undefined
    ) {
      invalid(`JSON mode is not enabled for ${record.name}.`, [
        {
          field: "generation_config.response_mime_type",
          description: "Tuned models do not support JSON mode.",
        },
      ]);
    }
    const contents = Array.isArray(body.contents)
      ? (body.contents as Array<Record<string, unknown>>)
      : [];
    if (contents.length === 0) {
      invalid("* GenerateContentRequest.contents: contents is not specified", [
        { field: "contents", description: "contents is not specified" },
      ]);
    }
    let totalChars = 0;
    for (const content of contents) {
      for (const part of Array.isArray(content.parts)
        ? (content.parts as Array<Record<string, unknown>>)
        : []) {
        if (typeof part.text !== "string") {
          invalid(`Tuned model ${record.name} accepts text input only.`, [
            {
              field: "contents.parts",
              description: "Only text parts are supported by tuned models.",
            },
          ]);
        }
        totalChars += part.text.length;
      }
    }
    if (totalChars > MAX_GENERATE_INPUT) {
      invalid(
        `The input is ${totalChars} characters; tuned models accept at most ${MAX_GENERATE_INPUT}.`,
        [{ field: "contents", description: `at most ${MAX_GENERATE_INPUT} characters` }],
      );
    }
    const last = contents[contents.length - 1]!;
    const input = (Array.isArray(last.parts) ? (last.parts as Array<{ text: string }>) : [])
      .map((part) => part.text)
      .join("");
    const context: FakeResponderContext = {
      name: record.name,
      baseModel: record.baseModel,
      examples: record.examples,
    };
    const seen =
      record.examples.find((example) => example.textInput === input) ??
      record.examples.find((example) => example.textInput.trim() === input.trim());
    let text = seen?.output ?? (this.#options.respond ?? defaultResponder)(input, context);
    let finishReason = "STOP";
    const maxTokens =
      typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
    if (maxTokens !== undefined && fakeTokenCount(text) > maxTokens) {
      text = text.slice(0, maxTokens * 4);
      finishReason = "MAX_TOKENS";
    }
    const promptTokenCount = fakeTokenCount(
      contents.map((content) => JSON.stringify(content.parts ?? [])).join(""),
    );
    const candidatesTokenCount = fakeTokenCount(text);
    const usageMetadata = {
      promptTokenCount,
      candidatesTokenCount,
      totalTokenCount: promptTokenCount + candidatesTokenCount,
    };
    const responseId = this.#randomId(16, true);
    if (!stream) {
      return {
        status: 200,
        body: {
          candidates: [{ content: { parts: [{ text }], role: "model" }, finishReason, index: 0 }],
          usageMetadata,
          modelVersion: record.name,
          responseId,
        },
      };
    }
    const chunks = chunkText(text);
    const events = chunks.map((chunk, index) => {
      const final = index === chunks.length - 1;
      return {
        candidates: [
          {
            content: { parts: [{ text: chunk }], role: "model" },
            ...(final ? { finishReason } : {}),
            index: 0,
          },
        ],
        usageMetadata: final
          ? usageMetadata
          : { promptTokenCount, totalTokenCount: promptTokenCount },
        modelVersion: record.name,
        responseId,
      };
    });
    if (query.get("alt") === "sse") {
      return {
        status: 200,
        body: events,
        events,
        raw: events.map((event) => `data: ${JSON.stringify(event)}\r\n\r\n`).join(""),
        headers: { "content-type": "text/event-stream" },
      };
    }
    return { status: 200, body: events, events };
  }
}

/** A deterministic, strictly decreasing training loss from about 4.4 down to about 0.7. */
function fakeLoss(step: number, totalSteps: number): number {
  return Math.round((0.5 + 4 * Math.exp((-3 * step) / totalSteps)) * 1e6) / 1e6;
}
