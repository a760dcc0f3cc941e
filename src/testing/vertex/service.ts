/**
 * The transport-independent fake of Vertex AI supervised tuning (`projects.locations.tuningJobs`
 * create/get/list/cancel, `endpoints` generate/stream/countTokens, under `v1` and `v1beta1`)
 * together with the Cloud Storage JSON API's uploads, so a client can stage its data and tune
 * against one object. The msw handlers and the real HTTP server both call
 * {@link FakeVertexService.handle}. Requests and replies follow the proto3 JSON mapping (see
 * `shared/proto-json.ts`); the resources live in the sibling modules.
 */
import { mulberry32 } from "../../core/dataset/split.js";
import { FakeClock } from "../shared/clock.js";
import { FaultInjector } from "../shared/faults.js";
import type { FakeResponder } from "../shared/generate.js";
import { errorInfoDetail } from "../shared/google-errors.js";
import { fail, invalid, type Reply, type RequestContext, type RouteMatch } from "../shared/http.js";
import type { SimulatedJob } from "../shared/job-simulation.js";
import { ProtoJsonCodec } from "../shared/proto-json.js";
import { FakeTuningService } from "../shared/tuning-service.js";
import { countEndpointTokens, findEndpointJob, generateOnEndpoint } from "./endpoints.js";
import { VERTEX_ENUM_NUMBERS } from "./enum-numbers.generated.js";
import { VERTEX_ROUTES, type VertexRoute, type VertexRouteSpec } from "./routes.js";
import { VERTEX_SCHEMAS } from "./schemas.js";
import {
  type FakeStorageObject,
  findJob,
  type JobRecord,
  pollJob,
  type VertexFake,
} from "./state.js";
import { FakeStorage } from "./storage.js";
import {
  cancelTuningJob,
  createTuningJob,
  DEFAULT_VERTEX_BASE_MODELS,
  jobJson,
  listTuningJobs,
} from "./tuning-jobs.js";

export type { FakeStorageObject } from "./state.js";
export { DEFAULT_VERTEX_BASE_MODELS } from "./tuning-jobs.js";

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

/** `GoogleCloudAiplatformV1TuningJob` → `google.cloud.aiplatform.v1.TuningJob`. */
function messageType(schema: string): string {
  if (schema.startsWith("GoogleCloudAiplatformV1"))
    return `google.cloud.aiplatform.v1.${schema.slice("GoogleCloudAiplatformV1".length)}`;
  if (schema.startsWith("GoogleProtobuf")) return `google.protobuf.${schema.slice(14)}`;
  if (schema.startsWith("GoogleRpc")) return `google.rpc.${schema.slice(9)}`;
  return schema;
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
export class FakeVertexService extends FakeTuningService<VertexRoute> {
  readonly clock: FakeClock;
  /** Fault injection, the same API as the Gemini fake's (routes are {@link VertexRoute}s). */
  readonly faults = new FaultInjector<VertexRoute>({ createRoute: "createTuningJob" });
  protected readonly codec = new ProtoJsonCodec({
    schemas: VERTEX_SCHEMAS,
    enums: VERTEX_ENUM_NUMBERS,
    messageType,
  });
  protected readonly basePath: string;
  protected readonly stepDurationMs: number;

  readonly #options: FakeVertexServiceOptions;
  readonly #fake: VertexFake;
  readonly #jobs = new Map<string, JobRecord>();
  readonly #objects = new Map<string, FakeStorageObject>();
  readonly #storage: FakeStorage;
  #random: () => number;

  constructor(options: FakeVertexServiceOptions = {}) {
    super();
    this.#options = options;
    this.basePath = options.basePath ?? "";
    this.stepDurationMs = options.stepDurationMs ?? 1000;
    this.clock = options.clock ?? new FakeClock(options.startTime);
    this.#random = mulberry32(options.seed ?? 1);
    this.stepsPerPoll = options.stepsPerPoll ?? 5;
    this.#fake = {
      clock: this.clock,
      faults: this.faults,
      jobs: this.#jobs,
      objects: this.#objects,
      settings: {
        stepDurationMs: options.stepDurationMs ?? 1000,
        queuedSteps: options.queuedSteps ?? 1,
        batchSize: options.batchSize ?? 8,
        defaultEpochCount: options.defaultEpochCount ?? 3,
        maxExampleChars: options.maxExampleChars ?? 40_000,
        cancelLatencySteps: options.cancelLatencySteps ?? 1,
        respond: options.respond,
        baseModels: options.baseModels ?? DEFAULT_VERTEX_BASE_MODELS,
        buckets: options.buckets,
      },
      poll: (job) => this.poll(job),
      newId: () => this.#newId(),
    };
    this.#storage = new FakeStorage(this.#fake);
    this.clock.onAdvance((elapsed) => {
      for (const record of this.#jobs.values()) record.job.advance(elapsed);
    });
  }

  /** The token requests must carry (`null` when not checked). */
  get accessToken(): string | null {
    return this.#options.accessToken === undefined
      ? "test-access-token"
      : this.#options.accessToken;
  }

  /** Forget every job, object, fault and logged request (the clock keeps its time). */
  reset(): void {
    this.#jobs.clear();
    this.#objects.clear();
    this.#storage.clear();
    this.faults.clear();
    this.requests.length = 0;
    this.#random = mulberry32(this.#options.seed ?? 1);
  }

  /** The job as `GET` would return it (no poll side effects), or undefined. */
  getJob(nameOrId: string): Record<string, unknown> | undefined {
    const id = nameOrId.split("/").pop() ?? "";
    const record = this.#jobs.get(id);
    return record === undefined ? undefined : jobJson(record);
  }

  /** Every job, in creation order (no poll side effects). */
  listJobs(): Record<string, unknown>[] {
    return [...this.#jobs.values()].map(jobJson);
  }

  /** Stores an object, as if uploaded earlier (for tests that pass an existing `gs://` URI). */
  putObject(uri: string, text: string, contentType = "application/jsonl"): FakeStorageObject {
    const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
    if (!match) throw new RangeError(`putObject needs a gs://bucket/object URI, got ${uri}`);
    return this.#storage.store(match[1] as string, match[2] as string, text, contentType);
  }

  /** A stored object by `gs://bucket/object`, or undefined. */
  getObject(uri: string): FakeStorageObject | undefined {
    return this.#objects.get(uri);
  }

  /** Every stored object. */
  listObjects(): FakeStorageObject[] {
    return [...this.#objects.values()];
  }

  protected simulatedJobs(): Iterable<SimulatedJob> {
    return [...this.#jobs.values()].map((record) => record.job);
  }

  // ---- the pipeline -----------------------------------------------------------------------

  protected route(method: string, path: string): RouteMatch<VertexRoute> | undefined {
    return this.#match(method, path)?.match;
  }

  #match(
    method: string,
    path: string,
  ): { match: RouteMatch<VertexRoute>; spec: VertexRouteSpec } | undefined {
    const versioned = /^\/(v1|v1beta1)\/(.*)$/.exec(path);
    for (const spec of VERTEX_ROUTES) {
      if (spec.method !== method) continue;
      if (spec.api === "storage") {
        const found = spec.pattern.exec(path);
        if (found) return { match: { name: spec.name, version: "", params: found.slice(1) }, spec };
        continue;
      }
      if (versioned === null) continue;
      const found = spec.pattern.exec(versioned[2] as string);
      if (found) {
        return {
          match: { name: spec.name, version: versioned[1] as string, params: found.slice(1) },
          spec,
        };
      }
    }
    return undefined;
  }

  protected faultMessage(status: number): string {
    if (status === 429) return "Quota exceeded for aiplatform.googleapis.com/tuning_jobs.";
    if (status === 503) return "The service is currently unavailable.";
    return `Injected ${status} error.`;
  }

  protected override loggedBody(
    route: RouteMatch<VertexRoute> | undefined,
    query: URLSearchParams,
    body: string | undefined,
    bytes: Uint8Array | undefined,
  ): unknown {
    if (
      route?.name === "uploadChunk" ||
      (route?.name === "uploadObject" && query.get("uploadType") === "media")
    ) {
      return body === undefined
        ? undefined
        : { bytes: bytes?.byteLength ?? Buffer.byteLength(body, "utf8") };
    }
    return super.loggedBody(route, query, body, bytes);
  }

  protected authenticate(context: Pick<RequestContext<VertexRoute>, "headers">): void {
    const token = this.accessToken;
    const authorization = context.headers.authorization;
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

  protected dispatch(context: RequestContext<VertexRoute>): Reply {
    const spec = this.#match(context.method, context.path)?.spec as VertexRouteSpec;
    const { name, params } = context.route;
    const [first = "", second = "", third = ""] = params;
    if (name === "uploadObject") {
      const reply = this.#storage.upload(
        first,
        context.url,
        context.headers,
        context.rawBody ?? "",
      );
      return { ...reply, schema: "StorageObject" };
    }
    if (name === "uploadChunk") {
      const bytes = context.bodyBytes ?? Buffer.from(context.rawBody ?? "", "utf8");
      return {
        ...this.#storage.uploadChunk(first, context.query, context.headers, bytes),
        schema: "StorageObject",
      };
    }
    this.#checkLocation(context.url, first, second);
    const query = this.readQuery(context, spec.query);
    const body = this.readBody(context, spec.body);
    const fake = this.#fake;
    switch (name) {
      case "createTuningJob":
        return createTuningJob(fake, first, second, body);
      case "listTuningJobs":
        return listTuningJobs(fake, first, second, query);
      case "getTuningJob":
        return {
          status: 200,
          schema: "GoogleCloudAiplatformV1TuningJob",
          body: jobJson(pollJob(fake, findJob(fake, first, second, third))),
        };
      case "cancelTuningJob":
        return cancelTuningJob(fake, findJob(fake, first, second, third));
      case "generateContent":
      case "streamGenerateContent":
        return generateOnEndpoint(
          fake,
          findEndpointJob(fake, first, second, third),
          body,
          name === "streamGenerateContent",
        );
      case "countTokens":
        findEndpointJob(fake, first, second, third);
        return countEndpointTokens(body);
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

  #newId(): string {
    let out = String(1 + Math.floor(this.#random() * 9));
    for (let i = 0; i < 18; i++) out += String(Math.floor(this.#random() * 10));
    return out;
  }
}
