/**
 * The transport-independent fake of Vertex AI supervised tuning (`projects.locations.tuningJobs`
 * create/get/list/cancel, `endpoints.generateContent`) together with the Cloud Storage JSON
 * API's media upload, so a client can stage its data and tune against one object. The msw
 * handlers and the real HTTP server both call {@link FakeVertexService.handle}.
 */

import { mulberry32 } from "../../core/dataset/split.js";
import { FakeClock } from "../clock.js";
import { FaultInjector, type TuningFailureSpec } from "../faults.js";
import { chunkText, defaultResponder, type FakeResponder, fakeTokenCount } from "../generate.js";
import {
  type ErrorDetail,
  errorInfoDetail,
  type FieldViolation,
  googleError,
  RPC_CODES,
  retryInfoDetail,
  statusNameForHttp,
} from "../google-errors.js";
import { validateAgainstSchema } from "../schema-validator.js";
import {
  camelizeKeys,
  type FakeHttpRequest,
  type FakeHttpResult,
  fail,
  HttpFailure,
  invalid,
  normalizeHeaders,
  type RecordedRequest,
  schemaViolations,
} from "../service.js";
import { VERTEX_SCHEMAS, type VertexRoute } from "./route-schemas.js";

/** Base models the fake accepts for tuning unless told otherwise. */
export const DEFAULT_VERTEX_BASE_MODELS: readonly string[] = [
  "gemini-2.5-flash",
  "gemini-2.5-flash-lite",
  "gemini-2.5-pro",
  "gemini-2.0-flash-001",
  "gemini-2.0-flash-lite-001",
];

/** Options of {@link FakeVertexService}. */
export interface FakeVertexServiceOptions {
  /**
   * The OAuth access token requests must carry (`Authorization: Bearer …`). `null` turns
   * checking off (any or no token is accepted). @default "test-access-token"
   */
  accessToken?: string | null;
  /** When set, only this project is served (others → 403 PERMISSION_DENIED). */
  project?: string;
  /** Base model ids tuning accepts. @default DEFAULT_VERTEX_BASE_MODELS */
  baseModels?: readonly string[];
  /** Buckets uploads may write to; any bucket when absent (unknown ones → 404 when set). */
  buckets?: readonly string[];
  clock?: FakeClock;
  /** Start of fake time when no clock is given. @default 2026-01-01T00:00:00Z */
  startTime?: number | Date;
  /**
   * Auto mode: each `GET` of a running job advances it this many steps. `0` = manual mode
   * (`advance(ms)`, `tick(steps)`, `completeAll()`). @default 5
   */
  stepsPerPoll?: number;
  /** Fake time one step takes. @default 1000 */
  stepDurationMs?: number;
  /** Steps a new job spends in JOB_STATE_PENDING before it runs. @default 1 */
  queuedSteps?: number;
  /** Examples per step, for `tuningStepCount = ceil(examples × epochs / batch)`. @default 8 */
  batchSize?: number;
  /** Epochs when the request gives none. @default 3 */
  defaultEpochCount?: number;
  /**
   * Examples with more characters than this (all turns) count as truncated in
   * `tuningDataStats`. @default 40000
   */
  maxExampleChars?: number;
  /** Steps between cancel and JOB_STATE_CANCELLED (JOB_STATE_CANCELLING meanwhile). @default 1 */
  cancelLatencySteps?: number;
  /** Answers generate calls for inputs not seen in training. @default defaultResponder */
  respond?: FakeResponder;
  /** Seed of the id generator. @default 1 */
  seed?: number;
  /** Path prefix before `/v1/…` and `/upload/…`. @default "" */
  basePath?: string;
}

type Phase = "pending" | "running" | "cancelling" | "succeeded" | "failed" | "cancelled";

interface TrainingExample {
  system: string | undefined;
  input: string;
  output: string;
}

interface JobRecord {
  id: string;
  name: string;
  project: string;
  location: string;
  request: Record<string, unknown>;
  createTime: string;
  updateTime: string;
  startTime: string | undefined;
  endTime: string | undefined;
  phase: Phase;
  elapsedMs: number;
  stepsDone: number;
  totalSteps: number | undefined;
  epochCount: number;
  examples: TrainingExample[];
  stats: Record<string, unknown> | undefined;
  error: { code: number; message: string } | undefined;
  failure: TuningFailureSpec | undefined;
  cancelAtMs: number | undefined;
  endpointId: string;
  modelId: string;
}

/** A resumable upload in progress. */
interface UploadSession {
  bucket: string;
  name: string;
  contentType: string;
  parts: Buffer[];
  received: number;
  object: FakeStorageObject | undefined;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Already-serialised body (SSE). */
  raw?: string;
}

interface Route {
  name: VertexRoute;
  params: string[];
}

const ROUTES: ReadonlyArray<{ name: VertexRoute; method: string; pattern: RegExp }> = [
  {
    name: "createTuningJob",
    method: "POST",
    pattern: /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/tuningJobs$/,
  },
  {
    name: "listTuningJobs",
    method: "GET",
    pattern: /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/tuningJobs$/,
  },
  {
    name: "getTuningJob",
    method: "GET",
    pattern: /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/tuningJobs\/([^/:]+)$/,
  },
  {
    name: "cancelTuningJob",
    method: "POST",
    pattern: /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/tuningJobs\/([^/:]+):cancel$/,
  },
  {
    name: "generateContent",
    method: "POST",
    pattern: /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/endpoints\/([^/:]+):generateContent$/,
  },
  {
    name: "streamGenerateContent",
    method: "POST",
    pattern:
      /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/endpoints\/([^/:]+):streamGenerateContent$/,
  },
  { name: "uploadObject", method: "POST", pattern: /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/ },
  { name: "uploadChunk", method: "PUT", pattern: /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/ },
];

const JSON_HEADERS = { "content-type": "application/json; charset=UTF-8" };
const SECRET_HEADERS = new Set([
  "authorization",
  "x-goog-api-key",
  "cookie",
  "proxy-authorization",
]);
const LABEL = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;
const TERMINAL: ReadonlySet<Phase> = new Set(["succeeded", "failed", "cancelled"]);

const STATE_OF: Record<Phase, string> = {
  pending: "JOB_STATE_PENDING",
  running: "JOB_STATE_RUNNING",
  cancelling: "JOB_STATE_CANCELLING",
  succeeded: "JOB_STATE_SUCCEEDED",
  failed: "JOB_STATE_FAILED",
  cancelled: "JOB_STATE_CANCELLED",
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One stored Cloud Storage object. */
export interface FakeStorageObject {
  bucket: string;
  name: string;
  contentType: string;
  /** The object's bytes, decoded as UTF-8. */
  text: string;
  size: number;
  generation: string;
  timeCreated: string;
}

/**
 * The fake Vertex AI tuning service plus a fake Cloud Storage upload endpoint. Serve it through
 * msw (`createFakeVertexHandlers`) or a real server (`startFakeVertexServer`).
 *
 * @example
 * ```ts
 * const service = new FakeVertexService({ stepsPerPoll: 0 });
 * // … client uploads data and creates a tuning job …
 * service.tick(3);        // three steps pass
 * service.completeAll();  // or jump to the end
 * expect(service.listJobs()).toHaveLength(1);
 * ```
 */
export class FakeVertexService {
  readonly clock: FakeClock;
  /** Fault injection, the same API as the Gemini fake's (routes are {@link VertexRoute}s). */
  readonly faults = new FaultInjector<VertexRoute>({ createRoute: "createTuningJob" });
  /** Every request received, in order (secrets redacted; upload bodies shown as their size). */
  readonly requests: RecordedRequest<VertexRoute>[] = [];

  readonly #options: FakeVertexServiceOptions;
  readonly #jobs = new Map<string, JobRecord>();
  readonly #objects = new Map<string, FakeStorageObject>();
  readonly #sessions = new Map<string, UploadSession>();
  #random: () => number;
  #stepsPerPoll: number;

  constructor(options: FakeVertexServiceOptions = {}) {
    this.#options = options;
    this.clock = options.clock ?? new FakeClock(options.startTime);
    this.#random = mulberry32(options.seed ?? 1);
    this.#stepsPerPoll = 5;
    this.stepsPerPoll = options.stepsPerPoll ?? 5;
    this.clock.onAdvance((elapsed) => {
      for (const job of this.#jobs.values()) this.#progress(job, elapsed);
    });
  }

  /** The token requests must carry (`null` when not checked). */
  get accessToken(): string | null {
    return this.#options.accessToken === undefined
      ? "test-access-token"
      : this.#options.accessToken;
  }

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

  /** Move fake time forward; jobs progress one step per `stepDurationMs`. */
  advance(ms: number): void {
    this.clock.advance(ms);
  }

  /** Move fake time forward by `steps` steps. */
  tick(steps = 1): void {
    this.clock.advance(steps * this.#stepMs);
  }

  /** Run every unfinished job to its end (success, its planned failure, or its cancellation). */
  completeAll(): void {
    const step = this.#stepMs;
    const queued = (this.#options.queuedSteps ?? 1) * step;
    for (let round = 0; round < 100; round++) {
      let needMs = 0;
      for (const job of this.#jobs.values()) {
        if (TERMINAL.has(job.phase)) continue;
        // Before it runs, its step count is unknown: first move it past the queue.
        const end = job.startTime === undefined ? queued : queued + (job.totalSteps ?? 1) * step;
        const until = job.cancelAtMs === undefined ? end : Math.min(end, job.cancelAtMs);
        needMs = Math.max(needMs, until - job.elapsedMs, step);
      }
      if (needMs === 0) return;
      this.clock.advance(needMs);
    }
  }

  /** Forget every job, object, fault and logged request (the clock keeps its time). */
  reset(): void {
    this.#jobs.clear();
    this.#objects.clear();
    this.#sessions.clear();
    this.faults.clear();
    this.requests.length = 0;
    this.#random = mulberry32(this.#options.seed ?? 1);
  }

  /** The job as `GET` would return it (no poll side effects), or undefined. */
  getJob(nameOrId: string): Record<string, unknown> | undefined {
    const id = nameOrId.split("/").pop() ?? "";
    const job = this.#jobs.get(id);
    return job === undefined ? undefined : this.#jobJson(job);
  }

  /** Every job, in creation order (no poll side effects). */
  listJobs(): Record<string, unknown>[] {
    return [...this.#jobs.values()].map((job) => this.#jobJson(job));
  }

  /** Stores an object, as if uploaded earlier (for tests that pass an existing `gs://` URI). */
  putObject(uri: string, text: string, contentType = "application/jsonl"): FakeStorageObject {
    const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
    if (!match) throw new RangeError(`putObject needs a gs://bucket/object URI, got ${uri}`);
    return this.#store(match[1] as string, match[2] as string, text, contentType);
  }

  /** A stored object by `gs://bucket/object`, or undefined. */
  getObject(uri: string): FakeStorageObject | undefined {
    return this.#objects.get(uri);
  }

  /** Every stored object. */
  listObjects(): FakeStorageObject[] {
    return [...this.#objects.values()];
  }

  /**
   * Handle one HTTP request. Resolves to the response to send, or to a network error the
   * transport must produce. Never rejects.
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
    const entry = this.#record(method, url, path, route, headers, request.body, request.bodyBytes);

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
        return this.#finish(
          entry,
          this.#faultReply(action.status, action.retryAfterSeconds, action.message),
        );
      }
      const reply = this.#dispatch(method, route, url, headers, request.body, request.bodyBytes);
      entry.outcome = "response-lost";
      entry.status = reply.status;
      entry.response = reply.body;
      return { kind: "network-error", reason: "response-lost" };
    }
    return this.#finish(
      entry,
      this.#dispatch(method, route, url, headers, request.body, request.bodyBytes),
    );
  }

  #finish(entry: RecordedRequest<VertexRoute>, reply: Reply): FakeHttpResult {
    entry.outcome = "response";
    entry.status = reply.status;
    entry.response = reply.body;
    return {
      kind: "response",
      status: reply.status,
      headers: { ...JSON_HEADERS, ...reply.headers },
      body: reply.raw ?? JSON.stringify(reply.body),
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
    const fallback =
      status === 429
        ? "Quota exceeded for aiplatform.googleapis.com/tuning_jobs."
        : status === 503
          ? "The service is currently unavailable."
          : `Injected ${name} error.`;
    return { status, body: googleError(name, message ?? fallback, details, status).body, headers };
  }

  #record(
    method: string,
    url: URL,
    path: string,
    route: Route | undefined,
    headers: Record<string, string>,
    body: string | undefined,
    bodyBytes: Uint8Array | undefined,
  ): RecordedRequest<VertexRoute> {
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) query[key] = key === "key" ? "[redacted]" : value;
    const safeHeaders: Record<string, string> = {};
    for (const [key, value] of Object.entries(headers))
      safeHeaders[key] = SECRET_HEADERS.has(key) ? "[redacted]" : value;
    let parsed: unknown;
    if (
      route?.name === "uploadChunk" ||
      (route?.name === "uploadObject" && url.searchParams.get("uploadType") === "media")
    ) {
      parsed =
        body === undefined
          ? undefined
          : { bytes: bodyBytes?.byteLength ?? Buffer.byteLength(body, "utf8") };
    } else if (body !== undefined && body.length > 0) {
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = body;
      }
    }
    const entry: RecordedRequest<VertexRoute> = {
      seq: this.requests.length + 1,
      time: this.clock.iso(),
      method,
      url: url.href,
      path,
      apiVersion: path.startsWith("/v1/") ? "v1" : undefined,
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
    for (const candidate of ROUTES) {
      if (candidate.method !== method) continue;
      const found = candidate.pattern.exec(path);
      if (found !== null) return { name: candidate.name, params: found.slice(1) as string[] };
    }
    return undefined;
  }

  #dispatch(
    method: string,
    route: Route | undefined,
    url: URL,
    headers: Record<string, string>,
    rawBody: string | undefined,
    bodyBytes: Uint8Array | undefined,
  ): Reply {
    try {
      this.#authenticate(headers);
      if (route === undefined) fail("NOT_FOUND", `Method not found: ${method} ${url.pathname}`);
      const [first = "", second = "", third = ""] = route.params;
      if (route.name === "uploadObject") {
        return this.#upload(first, url, headers, rawBody ?? "");
      }
      if (route.name === "uploadChunk") {
        const bytes = bodyBytes ?? Buffer.from(rawBody ?? "", "utf8");
        return this.#uploadChunk(first, url.searchParams, headers, bytes);
      }
      this.#checkLocation(url, first, second);
      const body = this.#parseBody(rawBody);
      switch (route.name) {
        case "createTuningJob":
          return this.#create(first, second, body);
        case "listTuningJobs":
          return this.#list(first, second, url.searchParams);
        case "getTuningJob":
          return { status: 200, body: this.#jobJson(this.#poll(this.#find(first, second, third))) };
        case "cancelTuningJob":
          this.#validate(
            body ?? {},
            "GoogleCloudAiplatformV1CancelTuningJobRequest",
            "cancel_tuning_job_request",
          );
          this.#cancel(this.#find(first, second, third));
          return { status: 200, body: {} };
        case "generateContent":
          return this.#generate(first, second, third, body);
        case "streamGenerateContent":
          return this.#stream(this.#generate(first, second, third, body), url.searchParams);
      }
    } catch (error) {
      if (error instanceof HttpFailure) {
        return { status: error.httpStatus, body: error.body, headers: error.headers };
      }
      return { status: 500, body: googleError("INTERNAL", "Internal error encountered.").body };
    }
  }

  #authenticate(headers: Record<string, string>): void {
    const token = this.accessToken;
    const authorization = headers.authorization;
    if (token === null) return;
    if (authorization === undefined || !/^bearer\s/i.test(authorization)) {
      fail(
        "UNAUTHENTICATED",
        "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        [errorInfoDetail("CREDENTIALS_MISSING", { service: "aiplatform.googleapis.com" })],
      );
    }
    if (authorization.replace(/^bearer\s+/i, "") !== token) {
      fail(
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        [
          errorInfoDetail("ACCESS_TOKEN_TYPE_UNSUPPORTED", {
            service: "aiplatform.googleapis.com",
          }),
        ],
      );
    }
  }

  /** A regional host serves only its own location (`us-central1-aiplatform…` → `us-central1`). */
  #checkLocation(url: URL, project: string, location: string): void {
    const regional = /^([a-z0-9-]+)-aiplatform\.googleapis\.com$/.exec(url.hostname);
    if (regional && regional[1] !== location) {
      invalid(
        `Location ${location} is not supported by the ${url.hostname} endpoint: send requests for ${location} to ${location}-aiplatform.googleapis.com.`,
        [{ field: "parent", description: `location ${location} does not match the endpoint` }],
      );
    }
    if (this.#options.project !== undefined && project !== this.#options.project) {
      fail(
        "PERMISSION_DENIED",
        `Permission denied on resource '//aiplatform.googleapis.com/projects/${project}/locations/${location}' (or it may not exist).`,
        [errorInfoDetail("IAM_PERMISSION_DENIED", { service: "aiplatform.googleapis.com" })],
      );
    }
  }

  #parseBody(raw: string | undefined): unknown {
    if (raw === undefined || raw.trim().length === 0) return undefined;
    try {
      return JSON.parse(raw);
    } catch (error) {
      invalid(
        `Invalid JSON payload received. ${error instanceof Error ? error.message : ""}`.trim(),
      );
    }
  }

  #validate(body: unknown, schema: string, root: string): Record<string, unknown> {
    if (!isRecord(body)) invalid(`Invalid JSON payload received. Expected an object for ${root}.`);
    const normalized = camelizeKeys(body) as Record<string, unknown>;
    // Map keys are data, not field names: labels keep their spelling.
    if (isRecord(body.labels)) normalized.labels = body.labels;
    const result = validateAgainstSchema(normalized, schema, { schemas: VERTEX_SCHEMAS });
    if (!result.valid) {
      const { message, violations } = schemaViolations(result.issues, root);
      invalid(message, violations);
    }
    return normalized;
  }

  // ---- Cloud Storage -------------------------------------------------------------------

  /** `POST …/o?uploadType=media` stores the body; `uploadType=resumable` opens a session. */
  #upload(bucket: string, url: URL, headers: Record<string, string>, body: string): Reply {
    const query = url.searchParams;
    const uploadType = query.get("uploadType");
    if (uploadType !== "media" && uploadType !== "resumable") {
      invalid(
        uploadType === null
          ? "Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/"
          : `The fake Cloud Storage serves uploadType=media and uploadType=resumable, not ${uploadType}.`,
      );
    }
    let name = query.get("name") ?? undefined;
    if (uploadType === "resumable" && body.trim().length > 0) {
      const metadata = this.#parseBody(body);
      if (isRecord(metadata) && typeof metadata.name === "string") name ??= metadata.name;
    }
    if (name === undefined || name.length === 0) invalid("Required parameter: name");
    const buckets = this.#options.buckets;
    if (buckets !== undefined && !buckets.includes(bucket)) {
      fail("NOT_FOUND", "The specified bucket does not exist.");
    }
    if (uploadType === "resumable") {
      const id = `ADPycd${this.#newId()}`;
      this.#sessions.set(id, {
        bucket,
        name,
        contentType: headers["x-upload-content-type"] ?? "application/octet-stream",
        parts: [],
        received: 0,
        object: undefined,
      });
      const location = new URL(url.href);
      location.search = "";
      location.searchParams.set("uploadType", "resumable");
      location.searchParams.set("name", name);
      location.searchParams.set("upload_id", id);
      return { status: 200, body: {}, headers: { location: location.href } };
    }
    const object = this.#store(
      bucket,
      name,
      body,
      headers["content-type"] ?? "application/octet-stream",
    );
    return { status: 200, body: this.#objectJson(object) };
  }

  /**
   * `PUT …?upload_id=` of a resumable session. `Content-Range: bytes a-b/total|*` appends a
   * chunk (non-final chunks must be multiples of 256 KiB, and start where the session ends);
   * `bytes *\/total|*` asks for the status. Answers 308 with `Range: bytes=0-N` until the last
   * byte arrives, then 200 with the object.
   */
  #uploadChunk(
    bucket: string,
    query: URLSearchParams,
    headers: Record<string, string>,
    bytes: Uint8Array,
  ): Reply {
    const id = query.get("upload_id") ?? "";
    const session = this.#sessions.get(id);
    if (session === undefined || session.bucket !== bucket) {
      fail("NOT_FOUND", "No such upload session.");
    }
    const range = headers["content-range"] ?? "";
    const status = (): Reply =>
      session.object
        ? { status: 200, body: this.#objectJson(session.object) }
        : {
            status: 308,
            body: {},
            headers: session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {},
          };
    const statusQuery = /^bytes \*\/(\d+|\*)$/.exec(range);
    if (statusQuery) {
      if (
        statusQuery[1] !== "*" &&
        Number(statusQuery[1]) === session.received &&
        !session.object
      ) {
        this.#finishSession(session);
      }
      return status();
    }
    const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
    if (!match) invalid(`Invalid Content-Range header: ${JSON.stringify(range)}`);
    const start = Number(match[1]);
    const end = Number(match[2]);
    const total = match[3] === "*" ? undefined : Number(match[3]);
    if (end - start + 1 !== bytes.byteLength) {
      invalid(`Content-Range ${range} does not match the ${bytes.byteLength} bytes sent.`);
    }
    if (session.object) return status();
    if (start > session.received) {
      invalid(`The chunk starts at ${start}, but the session holds ${session.received} bytes.`);
    }
    if (total === undefined && bytes.byteLength % (256 * 1024) !== 0) {
      invalid("Non-final chunks must be a multiple of 256 KiB (262144 bytes).");
    }
    // Bytes the session already holds (a resend) are skipped.
    const fresh = Buffer.from(bytes).subarray(session.received - start);
    session.parts.push(fresh);
    session.received += fresh.byteLength;
    if (total !== undefined && session.received >= total) this.#finishSession(session);
    return status();
  }

  #finishSession(session: UploadSession): void {
    const text = Buffer.concat(session.parts).toString("utf8");
    session.object = this.#store(session.bucket, session.name, text, session.contentType);
    session.parts = [];
  }

  #store(bucket: string, name: string, text: string, contentType: string): FakeStorageObject {
    const object: FakeStorageObject = {
      bucket,
      name,
      contentType,
      text,
      size: Buffer.byteLength(text, "utf8"),
      generation: String(this.clock.now() * 1000 + this.#objects.size),
      timeCreated: this.clock.iso(),
    };
    this.#objects.set(`gs://${bucket}/${name}`, object);
    return object;
  }

  #objectJson(object: FakeStorageObject): Record<string, unknown> {
    const id = `${object.bucket}/${object.name}/${object.generation}`;
    return {
      kind: "storage#object",
      id,
      selfLink: `https://www.googleapis.com/storage/v1/b/${object.bucket}/o/${encodeURIComponent(object.name)}`,
      name: object.name,
      bucket: object.bucket,
      generation: object.generation,
      metageneration: "1",
      contentType: object.contentType,
      storageClass: "STANDARD",
      size: String(object.size),
      timeCreated: object.timeCreated,
      updated: object.timeCreated,
    };
  }

  // ---- tuning jobs ----------------------------------------------------------------------

  #create(project: string, location: string, raw: unknown): Reply {
    const body = this.#validate(raw ?? {}, "GoogleCloudAiplatformV1TuningJob", "tuning_job");
    const violations: FieldViolation[] = [];
    const require = (field: string, description: string) => violations.push({ field, description });
    const baseModel = typeof body.baseModel === "string" ? body.baseModel : "";
    if (baseModel === "" && body.preTunedModel === undefined) {
      require("tuning_job.base_model", "A base model is required.");
    }
    const spec = isRecord(body.supervisedTuningSpec) ? body.supervisedTuningSpec : undefined;
    if (spec === undefined)
      require("tuning_job.supervised_tuning_spec", "A tuning spec is required.");
    const training = typeof spec?.trainingDatasetUri === "string" ? spec.trainingDatasetUri : "";
    if (spec !== undefined && !/^gs:\/\/[^/]+\/.+/.test(training)) {
      require("tuning_job.supervised_tuning_spec.training_dataset_uri", "Must be a gs:// URI of a JSONL file.");
    }
    const validationUri = spec?.validationDatasetUri;
    if (typeof validationUri === "string" && !/^gs:\/\/[^/]+\/.+/.test(validationUri)) {
      require("tuning_job.supervised_tuning_spec.validation_dataset_uri", "Must be a gs:// URI of a JSONL file.");
    }
    const hyper = isRecord(spec?.hyperParameters) ? spec.hyperParameters : {};
    if (typeof hyper.epochCount === "string" && !(Number(hyper.epochCount) > 0)) {
      require("tuning_job.supervised_tuning_spec.hyper_parameters.epoch_count", "epoch_count must be positive.");
    }
    if (typeof hyper.learningRateMultiplier === "number" && !(hyper.learningRateMultiplier > 0)) {
      require("tuning_job.supervised_tuning_spec.hyper_parameters.learning_rate_multiplier", "learning_rate_multiplier must be positive.");
    }
    const labels = isRecord(body.labels) ? (body.labels as Record<string, string>) : {};
    for (const [key, value] of Object.entries(labels)) {
      if (!/^\p{Ll}/u.test(key) || !LABEL.test(key) || !LABEL.test(String(value))) {
        require(`tuning_job.labels.${key}`, "Label keys and values must be ≤ 63 lowercase letters, digits, '_' or '-'; keys start with a letter.");
      }
    }
    if (
      typeof body.tunedModelDisplayName === "string" &&
      [...body.tunedModelDisplayName].length > 128
    ) {
      require("tuning_job.tuned_model_display_name", "At most 128 characters.");
    }
    if (violations.length > 0) {
      invalid(violations.map((v) => `${v.field}: ${v.description}`).join("\n"), violations);
    }
    const baseModels = this.#options.baseModels ?? DEFAULT_VERTEX_BASE_MODELS;
    if (!baseModels.includes(baseModel.replace(/^publishers\/google\/models\//, ""))) {
      invalid(`Base model ${baseModel} is not supported for supervised tuning.`, [
        { field: "tuning_job.base_model", description: `Supported: ${baseModels.join(", ")}` },
      ]);
    }
    for (const uri of [training, validationUri].filter((u): u is string => typeof u === "string")) {
      if (!this.#objects.has(uri)) {
        fail(
          "FAILED_PRECONDITION",
          `Failed to read ${uri}: the object does not exist or the Vertex AI service agent cannot read it.`,
        );
      }
    }
    const id = this.#newId();
    const now = this.clock.iso();
    const epochCount =
      typeof hyper.epochCount === "string"
        ? Number(hyper.epochCount)
        : (this.#options.defaultEpochCount ?? 3);
    const job: JobRecord = {
      id,
      name: `projects/${project}/locations/${location}/tuningJobs/${id}`,
      project,
      location,
      request: body,
      createTime: now,
      updateTime: now,
      startTime: undefined,
      endTime: undefined,
      phase: "pending",
      elapsedMs: 0,
      stepsDone: 0,
      totalSteps: undefined,
      epochCount,
      examples: [],
      stats: undefined,
      error: undefined,
      failure: this.faults.takeTuningFailure(id),
      cancelAtMs: undefined,
      endpointId: this.#newId(),
      modelId: this.#newId(),
    };
    this.#jobs.set(id, job);
    return { status: 200, body: this.#jobJson(job) };
  }

  #newId(): string {
    let out = String(1 + Math.floor(this.#random() * 9));
    for (let i = 0; i < 18; i++) out += String(Math.floor(this.#random() * 10));
    return out;
  }

  #find(project: string, location: string, id: string): JobRecord {
    const job = this.#jobs.get(id);
    if (job === undefined || job.project !== project || job.location !== location) {
      fail(
        "NOT_FOUND",
        `The TuningJob does not exist: projects/${project}/locations/${location}/tuningJobs/${id}`,
      );
    }
    return job;
  }

  #poll(job: JobRecord): JobRecord {
    if (!TERMINAL.has(job.phase) && this.#stepsPerPoll > 0) {
      const ms = this.#stepsPerPoll * this.#stepMs;
      this.clock.skip(ms);
      this.#progress(job, ms);
    }
    return job;
  }

  #progress(job: JobRecord, elapsedMs: number): void {
    if (TERMINAL.has(job.phase)) return;
    const step = this.#stepMs;
    const queued = (this.#options.queuedSteps ?? 1) * step;
    const start = Date.parse(job.createTime);
    job.elapsedMs += elapsedMs;
    // A cancelled job stops at its cancel time; until then it may still finish (best effort).
    const horizon =
      job.cancelAtMs === undefined ? job.elapsedMs : Math.min(job.elapsedMs, job.cancelAtMs);
    if (job.startTime === undefined && horizon >= queued) {
      if (!this.#beginRunning(job, new Date(start + queued).toISOString())) return;
    }
    if (job.startTime !== undefined) {
      const total = job.totalSteps ?? 1;
      const target = Math.min(total, Math.floor((horizon - queued) / step));
      if (job.failure !== undefined && target >= job.failure.atStep) {
        const status = job.failure.status ?? "INTERNAL";
        this.#end(
          job,
          "failed",
          new Date(start + queued + job.failure.atStep * step).toISOString(),
          {
            code: RPC_CODES[status],
            message: job.failure.message ?? `Tuning failed at step ${job.failure.atStep}.`,
          },
        );
        return;
      }
      job.stepsDone = Math.max(job.stepsDone, target);
      if (job.stepsDone >= total) {
        this.#end(
          job,
          "succeeded",
          new Date(start + queued + total * step).toISOString(),
          undefined,
        );
        return;
      }
    }
    if (job.cancelAtMs !== undefined && job.elapsedMs >= job.cancelAtMs) {
      this.#end(job, "cancelled", new Date(start + job.cancelAtMs).toISOString(), {
        code: RPC_CODES.CANCELLED,
        message: "CANCELED",
      });
    }
  }

  /** PENDING → RUNNING: read and check the data, compute `tuningDataStats`. */
  #beginRunning(job: JobRecord, at: string): boolean {
    const spec = job.request.supervisedTuningSpec as Record<string, unknown>;
    const parsed = this.#readDataset(String(spec.trainingDatasetUri));
    job.startTime = at;
    job.updateTime = at;
    if (typeof parsed === "string") {
      this.#end(job, "failed", at, { code: RPC_CODES.INVALID_ARGUMENT, message: parsed });
      return false;
    }
    if (typeof spec.validationDatasetUri === "string") {
      const validation = this.#readDataset(spec.validationDatasetUri);
      if (typeof validation === "string") {
        this.#end(job, "failed", at, {
          code: RPC_CODES.INVALID_ARGUMENT,
          message: `Validation dataset: ${validation}`,
        });
        return false;
      }
    }
    job.examples = parsed;
    if (job.phase === "pending") job.phase = "running";
    const batch = this.#options.batchSize ?? 8;
    job.totalSteps = Math.max(1, Math.ceil((parsed.length * job.epochCount) / batch));
    const maxChars = this.#options.maxExampleChars ?? 40_000;
    const truncated: string[] = [];
    let characters = 0;
    const inputTokens: number[] = [];
    const outputTokens: number[] = [];
    parsed.forEach((example, index) => {
      const chars = (example.system?.length ?? 0) + example.input.length + example.output.length;
      characters += chars;
      if (chars > maxChars) truncated.push(String(index));
      inputTokens.push(fakeTokenCount((example.system ?? "") + example.input));
      outputTokens.push(fakeTokenCount(example.output));
    });
    const billable = [...inputTokens, ...outputTokens].reduce((a, b) => a + b, 0) * job.epochCount;
    job.stats = {
      tuningDatasetExampleCount: String(parsed.length),
      totalTuningCharacterCount: String(characters),
      totalBillableTokenCount: String(billable),
      tuningStepCount: String(job.totalSteps),
      totalTruncatedExampleCount: String(truncated.length),
      ...(truncated.length > 0 ? { truncatedExampleIndices: truncated } : {}),
      userInputTokenDistribution: distribution(inputTokens),
      userOutputTokenDistribution: distribution(outputTokens),
    };
    return true;
  }

  /** The examples of a JSONL object, or why it cannot be used. */
  #readDataset(uri: string): TrainingExample[] | string {
    const object = this.#objects.get(uri);
    if (object === undefined) return `Failed to read ${uri}: the object does not exist.`;
    const examples: TrainingExample[] = [];
    const lines = object.text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.trim() === "") continue;
      const where = `${uri} line ${i + 1}`;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        return `Invalid JSON at ${where}.`;
      }
      if (!isRecord(record) || !Array.isArray(record.contents) || record.contents.length < 2) {
        return `Invalid example at ${where}: "contents" must hold at least a user and a model turn.`;
      }
      const text = (content: unknown) =>
        isRecord(content) && Array.isArray(content.parts)
          ? content.parts
              .map((p) => (isRecord(p) && typeof p.text === "string" ? p.text : ""))
              .join("")
          : "";
      const contents = record.contents as unknown[];
      const roles = contents.map((c) => (isRecord(c) ? c.role : undefined));
      if (roles.some((role) => role !== "user" && role !== "model") || roles.at(-1) !== "model") {
        return `Invalid example at ${where}: roles must be "user" or "model", ending with "model".`;
      }
      const users = contents.filter((c) => isRecord(c) && c.role === "user");
      const input = text(users.at(-1));
      const output = text(contents.at(-1));
      if (output.length === 0) return `Invalid example at ${where}: the model turn has no text.`;
      const system = isRecord(record.systemInstruction)
        ? text(record.systemInstruction)
        : undefined;
      examples.push({ system: system || undefined, input, output });
    }
    if (examples.length === 0) return `${uri} holds no examples.`;
    return examples;
  }

  #end(job: JobRecord, phase: Phase, at: string, error: JobRecord["error"]): void {
    job.phase = phase;
    job.endTime = at;
    job.updateTime = at;
    job.error = error;
  }

  #cancel(job: JobRecord): void {
    if (TERMINAL.has(job.phase)) {
      fail(
        "FAILED_PRECONDITION",
        `Cannot cancel tuning job ${job.name} in state ${STATE_OF[job.phase]}.`,
      );
    }
    if (job.cancelAtMs !== undefined) return;
    job.cancelAtMs = job.elapsedMs + (this.#options.cancelLatencySteps ?? 1) * this.#stepMs;
    job.phase = "cancelling";
    job.updateTime = this.clock.iso();
    this.#progress(job, 0); // latency 0: cancelled at once
  }

  #jobJson(job: JobRecord): Record<string, unknown> {
    const request = job.request;
    const json: Record<string, unknown> = { name: job.name };
    for (const key of [
      "baseModel",
      "tunedModelDisplayName",
      "description",
      "labels",
      "serviceAccount",
      "encryptionSpec",
    ]) {
      if (request[key] !== undefined) json[key] = request[key];
    }
    const spec = { ...(request.supervisedTuningSpec as Record<string, unknown>) };
    const hyper = { ...(isRecord(spec.hyperParameters) ? spec.hyperParameters : {}) };
    if (hyper.epochCount === undefined) hyper.epochCount = String(job.epochCount);
    spec.hyperParameters = hyper;
    json.supervisedTuningSpec = spec;
    json.state = STATE_OF[job.phase];
    json.createTime = job.createTime;
    if (job.startTime !== undefined) json.startTime = job.startTime;
    if (job.endTime !== undefined) json.endTime = job.endTime;
    json.updateTime = job.updateTime;
    if (job.error !== undefined) json.error = { ...job.error };
    if (job.stats !== undefined)
      json.tuningDataStats = { supervisedTuningDataStats: { ...job.stats } };
    if (job.phase === "succeeded") {
      const parent = `projects/${job.project}/locations/${job.location}`;
      json.tunedModel = {
        model: `${parent}/models/${job.modelId}@1`,
        endpoint: `${parent}/endpoints/${job.endpointId}`,
      };
    }
    if (job.startTime !== undefined) {
      json.experiment = `projects/${job.project}/locations/${job.location}/metadataStores/default/contexts/tuning-experiment-${job.id}`;
    }
    return json;
  }

  #list(project: string, location: string, query: URLSearchParams): Reply {
    const filter = query.get("filter") ?? "";
    const match = parseFilter(filter);
    const all = [...this.#jobs.values()]
      .filter((job) => job.project === project && job.location === location)
      .reverse() // newest first
      .filter((job) => match(this.#jobJson(job)));
    const rawSize = query.get("pageSize");
    let pageSize = 100;
    if (rawSize !== null) {
      const parsed = Number(rawSize);
      if (!Number.isInteger(parsed) || parsed < 0)
        invalid(`Invalid value for page_size: "${rawSize}".`);
      pageSize = parsed === 0 ? 100 : Math.min(parsed, 1000);
    }
    const token = query.get("pageToken") ?? "";
    let offset = 0;
    if (token.length > 0) {
      let decoded: { o?: unknown; f?: unknown } | undefined;
      try {
        decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as typeof decoded;
      } catch {
        decoded = undefined;
      }
      if (decoded === undefined || typeof decoded.o !== "number" || decoded.f !== filter) {
        invalid("Invalid page token: send the same filter with the page token it came with.");
      }
      offset = decoded.o;
    }
    const items = all.slice(offset, offset + pageSize);
    const next = offset + pageSize;
    const body: Record<string, unknown> = { tuningJobs: items.map((job) => this.#jobJson(job)) };
    if (next < all.length) {
      body.nextPageToken = Buffer.from(JSON.stringify({ o: next, f: filter }), "utf8").toString(
        "base64url",
      );
    }
    return { status: 200, body };
  }

  // ---- generate ------------------------------------------------------------------------

  /**
   * `:streamGenerateContent`: the answer split into chunks at word boundaries, as SSE events
   * with `?alt=sse`, else as a JSON array (the log records the array either way).
   */
  #stream(reply: Reply, query: URLSearchParams): Reply {
    const whole = reply.body as {
      candidates: Array<{ content: { parts: Array<{ text: string }> }; finishReason: string }>;
    } & Record<string, unknown>;
    const candidate = whole.candidates[0];
    const chunks = chunkText(candidate?.content.parts[0]?.text ?? "");
    const events = chunks.map((text, index) => {
      const final = index === chunks.length - 1;
      return {
        ...whole,
        candidates: [
          {
            content: { role: "model", parts: [{ text }] },
            ...(final ? { finishReason: candidate?.finishReason ?? "STOP" } : {}),
            index: 0,
          },
        ],
      };
    });
    if (query.get("alt") === "sse") {
      return {
        status: 200,
        body: events,
        raw: events.map((event) => `data: ${JSON.stringify(event)}\r\n\r\n`).join(""),
        headers: { "content-type": "text/event-stream" },
      };
    }
    return { status: 200, body: events };
  }

  #generate(project: string, location: string, endpointId: string, raw: unknown): Reply {
    const body = this.#validate(
      raw ?? {},
      "GoogleCloudAiplatformV1GenerateContentRequest",
      "generate_content_request",
    );
    const job = [...this.#jobs.values()].find(
      (candidate) =>
        candidate.endpointId === endpointId &&
        candidate.project === project &&
        candidate.location === location &&
        candidate.phase === "succeeded",
    );
    if (job === undefined) {
      fail(
        "NOT_FOUND",
        `Endpoint projects/${project}/locations/${location}/endpoints/${endpointId} not found.`,
      );
    }
    const contents = Array.isArray(body.contents)
      ? (body.contents as Array<Record<string, unknown>>)
      : [];
    if (contents.length === 0) {
      invalid("Unable to submit request because it has an empty contents field.", [
        { field: "contents", description: "contents is not specified" },
      ]);
    }
    const textOf = (content: unknown) =>
      isRecord(content) && Array.isArray(content.parts)
        ? content.parts
            .map((p) => (isRecord(p) && typeof p.text === "string" ? p.text : ""))
            .join("")
        : "";
    const input = textOf(contents.at(-1));
    const system = isRecord(body.systemInstruction)
      ? textOf(body.systemInstruction) || undefined
      : undefined;
    const seen =
      job.examples.find((example) => example.input === input && example.system === system) ??
      job.examples.find(
        (example) => example.input.trim() === input.trim() && example.system === system,
      );
    const endpoint = `projects/${project}/locations/${location}/endpoints/${endpointId}`;
    let text =
      seen?.output ??
      (this.#options.respond ?? defaultResponder)(input, {
        name: endpoint,
        baseModel: String(job.request.baseModel ?? ""),
        examples: job.examples.map((e) => ({ textInput: e.input, output: e.output })),
      });
    let finishReason = "STOP";
    const config = isRecord(body.generationConfig) ? body.generationConfig : {};
    const maxTokens =
      typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
    if (maxTokens !== undefined && fakeTokenCount(text) > maxTokens) {
      text = text.slice(0, maxTokens * 4);
      finishReason = "MAX_TOKENS";
    }
    const promptTokenCount = fakeTokenCount(JSON.stringify(contents) + (system ?? ""));
    const candidatesTokenCount = fakeTokenCount(text);
    return {
      status: 200,
      body: {
        candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason, index: 0 }],
        usageMetadata: {
          promptTokenCount,
          candidatesTokenCount,
          totalTokenCount: promptTokenCount + candidatesTokenCount,
        },
        modelVersion: String(job.request.baseModel ?? ""),
        createTime: this.clock.iso(),
        responseId: this.#newId(),
      },
    };
  }
}

function distribution(values: number[]): Record<string, unknown> {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    sum: String(sum),
    min: sorted[0] ?? 0,
    max: sorted.at(-1) ?? 0,
    mean: sorted.length > 0 ? sum / sorted.length : 0,
    median: at(0.5),
    p5: at(0.05),
    p95: at(0.95),
  };
}

/**
 * The list filters the fake understands, joined by `AND` (or spaces): `labels.KEY="VALUE"`,
 * `state="JOB_STATE_…"`, `base_model="…"` (quotes optional). Anything else → 400.
 */
function parseFilter(filter: string): (job: Record<string, unknown>) => boolean {
  const terms = filter
    .split(/\s+AND\s+|\s+/)
    .map((term) => term.trim())
    .filter((term) => term.length > 0 && term !== "AND");
  const tests = terms.map((term) => {
    const match = /^([A-Za-z_][\w.-]*)\s*=\s*"?([^"]*)"?$/.exec(term);
    if (!match) invalid(`Unsupported filter term: ${term}`);
    const [, field, value] = match as unknown as [string, string, string];
    if (field.startsWith("labels.")) {
      const key = field.slice("labels.".length);
      return (job: Record<string, unknown>) =>
        isRecord(job.labels) && (job.labels as Record<string, string>)[key] === value;
    }
    if (field === "state") return (job: Record<string, unknown>) => job.state === value;
    if (field === "base_model" || field === "baseModel")
      return (job: Record<string, unknown>) => job.baseModel === value;
    return invalid(
      `Unsupported filter field: ${field} (the fake supports labels.*, state and base_model)`,
    );
  });
  return (job) => tests.every((test) => test(job));
}
