/**
 * The request pipeline both fake services share: a transport-independent request, the
 * request log, fault injection (errors, drops, delays, lost responses), Google's error replies
 * and proto3 JSON replies (integer enums when a client asks with `$alt=json;enum-encoding=int`).
 * A fake service subclasses {@link FakeHttpService} with its routes and handlers.
 */
import type { FakeClock } from "./clock.js";
import type { FaultInjector } from "./faults.js";
import {
  badRequestDetail,
  type ErrorDetail,
  type FieldViolation,
  googleError,
  type RpcStatusName,
  retryInfoDetail,
  statusNameForHttp,
} from "./google-errors.js";
import { issuesMessage, type ProtoJsonCodec, type QueryParameter } from "./proto-json.js";

/** A request as the transports hand it to a fake's `handle`. */
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
 * One entry of a fake's request log (`service.requests`). `R` is the fake's route names.
 */
export interface RecordedRequest<R extends string = string> {
  /** 1-based order of arrival. */
  seq: number;
  /** Fake time when it arrived (RFC 3339). */
  time: string;
  method: string;
  /** The URL with a `key` query parameter redacted. */
  url: string;
  /** Path without the base path, e.g. `/v1beta/tunedModels/abc`. */
  path: string;
  /** The API version segment (`v1`, `v1beta`, `v1beta1`) when the path has one. */
  apiVersion: string | undefined;
  route: R | undefined;
  /** Query parameters (`key` redacted). */
  query: Record<string, string>;
  /** Lower-cased request headers; `x-goog-api-key`, `authorization` and `cookie` read `[redacted]`. */
  headers: Record<string, string>;
  /** Parsed JSON body as sent, the raw text when it is not JSON, `undefined` when empty. */
  body: unknown;
  outcome: "response" | "dropped" | "response-lost";
  /** HTTP status sent (or that would have been sent for `response-lost`). */
  status: number | undefined;
  /**
   * The JSON response in canonical proto3 form (enum names, int64 strings) whatever encoding
   * went on the wire; for streams, the array of event payloads.
   */
  response: unknown;
}

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

/** @internal Lower-cased header names, multi-valued headers joined. */
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

/** @internal */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** @internal A handler's answer. */
export interface Reply {
  status: number;
  /** Canonical proto3 JSON (enum names). */
  body: unknown;
  headers?: Record<string, string>;
  /** The discovery schema of `body` (or of each of `events`), for integer-enum encoding. */
  schema?: string;
  /** A stream: the event payloads, sent as SSE with `alt=sse`, else as one JSON array. */
  events?: unknown[];
  /** A body that is not JSON (already serialised). */
  raw?: string;
}

/** @internal A matched route. */
export interface RouteMatch<R extends string> {
  name: R;
  /** `v1`, `v1beta`, `v1beta1`, or `""` for unversioned paths (uploads). */
  version: string;
  params: string[];
}

/** @internal Everything a handler may read about a request. */
export interface RequestContext<R extends string> {
  method: string;
  url: URL;
  /** Decoded path without the base path. */
  path: string;
  route: RouteMatch<R>;
  headers: Record<string, string>;
  query: URLSearchParams;
  rawBody: string | undefined;
  bodyBytes: Uint8Array | undefined;
}

const SECRET_HEADERS = new Set([
  "x-goog-api-key",
  "authorization",
  "cookie",
  "proxy-authorization",
]);
const JSON_HEADERS = { "content-type": "application/json; charset=UTF-8" };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * @internal The shared request pipeline of the fakes. Subclasses provide the routes, the
 * handlers and the wording of injected errors.
 */
export abstract class FakeHttpService<R extends string> {
  /** Every request received, in order (secrets redacted). */
  readonly requests: RecordedRequest<R>[] = [];
  abstract readonly clock: FakeClock;
  abstract readonly faults: FaultInjector<R>;
  protected abstract readonly codec: ProtoJsonCodec;
  protected abstract readonly basePath: string;

  /** The route of `method path`, or undefined (answered 404 "Method not found"). */
  protected abstract route(method: string, path: string): RouteMatch<R> | undefined;
  /** Checks credentials; throws Google's 401/403 reply when they are missing or wrong. */
  protected abstract authenticate(
    context: RequestContext<R> | Omit<RequestContext<R>, "route">,
  ): void;
  /** Handles a routed, authenticated request. */
  protected abstract dispatch(context: RequestContext<R>): Reply;
  /** The message of an injected error with this HTTP status. */
  protected abstract faultMessage(status: number): string;

  /** How a request body is shown in the log (uploads show their size, not their bytes). */
  protected loggedBody(
    _route: RouteMatch<R> | undefined,
    _query: URLSearchParams,
    body: string | undefined,
    _bytes: Uint8Array | undefined,
  ): unknown {
    if (body === undefined || body.length === 0) return undefined;
    try {
      return JSON.parse(body);
    } catch {
      return body;
    }
  }

  /** The query parameters `declared`, read as their types; 400 for unknown or malformed ones. */
  protected readQuery(
    context: RequestContext<R>,
    declared: Record<string, QueryParameter> = {},
  ): Record<string, unknown> {
    const { values, issues } = this.codec.decodeQuery(context.query, declared);
    if (issues.length > 0) {
      invalid(
        issuesMessage(issues),
        issues.map((issue) => ({ field: issue.field, description: issue.description })),
      );
    }
    return values;
  }

  /**
   * The JSON body read as message `body.schema` (canonical proto3 JSON), or Google's 400 for
   * malformed JSON, unknown fields and wrong values. A method without a body takes none.
   */
  protected readBody(
    context: RequestContext<R>,
    body: { schema: string; root: string } | undefined,
  ): Record<string, unknown> {
    const raw = context.rawBody;
    if (raw === undefined || raw.trim().length === 0) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      invalid(
        `Invalid JSON payload received. ${error instanceof Error ? error.message : "Unexpected token."}`,
        [{ field: "", description: "The body is not JSON." }],
      );
    }
    if (body === undefined) {
      if (parsed !== null && typeof parsed === "object" && Object.keys(parsed).length > 0) {
        invalid("Invalid JSON payload received. This method takes no request body.");
      }
      return {};
    }
    const { value, issues } = this.codec.decode(parsed, body.schema, body.root);
    if (issues.length > 0) {
      invalid(
        issuesMessage(issues),
        issues.map((issue) => ({ field: issue.field, description: issue.description })),
      );
    }
    return value;
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
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const basePath = this.basePath.replace(/\/+$/, "");
    if (basePath.length > 0 && path.startsWith(basePath)) path = path.slice(basePath.length) || "/";
    const route = this.route(method, path);
    const entry = this.#record(method, url, path, route, headers, request.body, request.bodyBytes);
    const context = {
      method,
      url,
      path,
      headers,
      query: url.searchParams,
      rawBody: request.body,
      bodyBytes: request.bodyBytes,
    };

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
        return this.#finish(entry, context.query, this.#faultReply(action));
      }
      // lose-response: handle for real, then drop the answer.
      const reply = this.#answer(context, route);
      entry.outcome = "response-lost";
      entry.status = reply.status;
      entry.response = reply.events ?? reply.body;
      return { kind: "network-error", reason: "response-lost" };
    }
    return this.#finish(entry, context.query, this.#answer(context, route));
  }

  #answer(context: Omit<RequestContext<R>, "route">, route: RouteMatch<R> | undefined): Reply {
    try {
      this.authenticate(route ? { ...context, route } : context);
      if (route === undefined) {
        fail("NOT_FOUND", `Method not found: ${context.method} ${context.url.pathname}`);
      }
      return this.dispatch({ ...context, route });
    } catch (error) {
      if (error instanceof HttpFailure) {
        return { status: error.httpStatus, body: error.body, headers: error.headers };
      }
      const { httpStatus, body } = googleError("INTERNAL", "Internal error encountered.");
      return { status: httpStatus, body };
    }
  }

  #faultReply(action: { status: number; retryAfterSeconds?: number; message?: string }): Reply {
    const name = statusNameForHttp(action.status);
    const details: ErrorDetail[] = [];
    const headers: Record<string, string> = {};
    if (action.retryAfterSeconds !== undefined) {
      headers["retry-after"] = String(action.retryAfterSeconds);
      details.push(retryInfoDetail(action.retryAfterSeconds));
    }
    const message = action.message ?? this.faultMessage(action.status);
    const { body } = googleError(name, message, details, action.status);
    return { status: action.status, body, headers };
  }

  #finish(entry: RecordedRequest<R>, query: URLSearchParams, reply: Reply): FakeHttpResult {
    entry.outcome = "response";
    entry.status = reply.status;
    entry.response = reply.events ?? reply.body;
    const ints = /(^|;)\s*enum-encoding=int\s*(;|$)/.test(query.get("$alt") ?? "");
    const wire = (value: unknown) =>
      ints && reply.schema !== undefined ? this.codec.encode(value, reply.schema, "int") : value;
    const headers = { ...JSON_HEADERS, ...reply.headers };
    let body: string;
    if (reply.raw !== undefined) {
      body = reply.raw;
    } else if (reply.events !== undefined) {
      const events = reply.events.map(wire);
      if (query.get("alt") === "sse") {
        headers["content-type"] = "text/event-stream";
        body = events.map((event) => `data: ${JSON.stringify(event)}\r\n\r\n`).join("");
      } else {
        body = JSON.stringify(events);
      }
    } else {
      body = JSON.stringify(wire(reply.body));
    }
    return { kind: "response", status: reply.status, headers, body };
  }

  #record(
    method: string,
    url: URL,
    path: string,
    route: RouteMatch<R> | undefined,
    headers: Record<string, string>,
    body: string | undefined,
    bytes: Uint8Array | undefined,
  ): RecordedRequest<R> {
    const query: Record<string, string> = {};
    for (const [key, value] of url.searchParams) query[key] = key === "key" ? "[redacted]" : value;
    const safeUrl = new URL(url.href);
    if (safeUrl.searchParams.has("key")) safeUrl.searchParams.set("key", "[redacted]");
    const safeHeaders: Record<string, string> = {};
    for (const [key, value] of Object.entries(headers))
      safeHeaders[key] = SECRET_HEADERS.has(key) ? "[redacted]" : value;
    const entry: RecordedRequest<R> = {
      seq: this.requests.length + 1,
      time: this.clock.iso(),
      method,
      url: safeUrl.href,
      path,
      apiVersion: route?.version || /^\/(v\d+(?:beta\d*)?)\//.exec(path)?.[1],
      route: route?.name,
      query,
      headers: safeHeaders,
      body: this.loggedBody(route, url.searchParams, body, bytes),
      outcome: "response",
      status: undefined,
      response: undefined,
    };
    this.requests.push(entry);
    return entry;
  }
}
