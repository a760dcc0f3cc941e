/**
 * The one HTTP module of the Google REST backends: Node's global `fetch` dispatched through
 * one shared undici `Agent` (keep-alive, connect/header/body timeouts), JSON in and out,
 * per-attempt timeouts, an overall deadline and retries through `withRetry`, and Google's
 * error bodies mapped to typed errors. Secrets never reach a URL, a log line or an error.
 */
import { Agent, type Dispatcher } from "undici";
import type { z } from "zod";
import { anySignal } from "../core/abort.js";
import {
  ApiError,
  ConnectionError,
  InvalidResponseError,
  TimeoutError,
  TunekitError,
  toAbortedError,
} from "../core/errors.js";
import { type AttemptContext, isRetryableError, withRetry } from "../core/retry.js";
import type { AuthProvider } from "./auth.js";
import { apiErrorFromResponse, type ErrorHinter } from "./errors.js";
import { Redactor } from "./redact.js";
import { checkReply } from "./reply.js";

/** A minimal logger; `console` fits. Lines never contain secrets. */
export interface Logger {
  debug?(message: string): void;
  info?(message: string): void;
  warn?(message: string): void;
}

/** The `fetch` signature the client calls (the global one unless a test injects another). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Options of {@link HttpClient}. */
export interface HttpClientOptions {
  /** `https://generativelanguage.googleapis.com` or a fake's URL. No trailing path needed. */
  baseUrl: string;
  /** Version segment put before every path unless a request names its own (e.g. `v1beta`). */
  apiVersion: string;
  auth: AuthProvider;
  /** Retries after the first attempt for retryable failures (default 2). */
  maxRetries?: number;
  /** Time limit of one attempt (default 60 s). */
  timeoutMs?: number;
  /** Time limit of a whole call, attempts and backoff together (default 5 min). */
  deadlineMs?: number;
  /** Cap on an honoured `Retry-After` (default 60 s); a longer one fails at once. */
  maxRetryAfterMs?: number;
  /** First backoff delay before jitter (default 500 ms); doubles per retry. */
  initialRetryDelayMs?: number;
  /** Cap on one backoff delay (default 8 s). */
  maxRetryDelayMs?: number;
  /** undici dispatcher (default: one shared keep-alive `Agent`). */
  dispatcher?: Dispatcher;
  /** Replaces the global fetch (tests). */
  fetch?: FetchLike;
  /** Backend-specific hints added to error messages. */
  errorHints?: ErrorHinter;
  logger?: Logger;
  /** Extra headers sent with every request (e.g. `x-goog-api-client`). */
  headers?: Record<string, string>;
  /** Jitter source for backoff (tests). */
  random?: () => number;
}

/** One request. `path` is relative to the version segment, e.g. `tunedModels/abc`. */
export interface HttpRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal | undefined;
  /** Overrides the client's API version for this request (cancel lives only under `v1`). */
  apiVersion?: string;
  /**
   * Whether failures may be retried. Default: true for GET, PATCH and DELETE, false for POST
   * (a POST is retried only when the caller knows a repeat is safe, e.g. a create with a fixed id).
   */
  retry?: boolean;
  /** Overrides the per-attempt timeout (generation may take longer than management calls). */
  timeoutMs?: number;
  /** Overrides the overall deadline of this call (attempts and backoff together). */
  deadlineMs?: number;
  /**
   * A non-JSON body (e.g. a file upload) instead of `body`. `data` is called once per attempt,
   * so a retry sends the content again from the start; an async iterable is streamed
   * (never held in memory whole).
   */
  upload?: UploadBody;
  /** Extra headers of this request (e.g. `Content-Range` of an upload chunk). */
  headers?: Record<string, string>;
  /**
   * Non-2xx statuses that are answers, not errors: `send` returns them like a 2xx (e.g. 308
   * "Resume Incomplete" of a resumable upload).
   */
  acceptStatus?: readonly number[];
  /**
   * The schema a successful reply must match (see `reply.ts`); a mismatch is an
   * `InvalidResponseError` naming the field. `kind` names the resource in that message.
   */
  reply?: { schema: z.ZodType; kind: string };
}

/** A raw request body: the bytes of a file upload. */
export interface UploadBody {
  contentType: string;
  /** Produces the bytes afresh for each attempt. */
  data: () => AsyncIterable<Uint8Array> | Uint8Array | string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_DEADLINE_MS = 5 * 60_000;

let sharedAgent: Agent | undefined;

/**
 * The process-wide undici Agent every client shares unless it is given its own dispatcher:
 * keep-alive connections, bounded connect/header/body waits.
 */
export function sharedDispatcher(): Agent {
  sharedAgent ??= new Agent({
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    connectTimeout: 10_000,
    headersTimeout: 120_000,
    bodyTimeout: 300_000,
    connections: 16,
  });
  return sharedAgent;
}

/**
 * Sends JSON requests to a Google REST API and returns parsed JSON.
 *
 * @example
 * ```ts
 * const http = new HttpClient({
 *   baseUrl: "https://generativelanguage.googleapis.com",
 *   apiVersion: "v1beta",
 *   auth: new ApiKeyAuth(process.env.GEMINI_API_KEY!),
 * });
 * const model = await http.request<{ name: string }>({ method: "GET", path: "models/gemini-2.5-flash" });
 * ```
 */
export class HttpClient {
  readonly baseUrl: string;
  readonly apiVersion: string;
  readonly maxRetries: number;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly redactor = new Redactor();
  readonly #auth: AuthProvider;
  readonly #options: HttpClientOptions;

  constructor(options: HttpClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiVersion = options.apiVersion;
    this.maxRetries = options.maxRetries ?? 2;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.#auth = options.auth;
    this.#options = options;
    this.#auth.registerSecrets(this.redactor);
  }

  /** Which credentials are in use, without the secret (`"api key"` or `"oauth"`). */
  get authKind(): string {
    return this.#auth.kind;
  }

  /** Sends `request` (retrying per its policy) and returns the parsed JSON body (`{}` when empty). */
  async request<T>(request: HttpRequest): Promise<T> {
    return this.retrying((context) => this.requestOnce<T>(request, context), request);
  }

  /**
   * Runs `fn` under the client's retry policy. `fn` receives the attempt number and a signal
   * that fires on caller abort, attempt timeout or deadline. Used directly when a caller must
   * know which attempt failed (e.g. a create whose repeat meets "already exists").
   */
  retrying<T>(
    fn: (context: AttemptContext) => Promise<T>,
    request: Pick<
      HttpRequest,
      "method" | "retry" | "signal" | "timeoutMs" | "deadlineMs" | "path"
    > & {
      /** Narrows which failures are retried (they must be retryable as well). */
      shouldRetry?: (error: unknown) => boolean;
    },
  ): Promise<T> {
    const retry = request.retry ?? request.method !== "POST";
    const narrowed = request.shouldRetry;
    return withRetry(fn, {
      maxRetries: retry ? this.maxRetries : 0,
      attemptTimeoutMs: request.timeoutMs ?? this.timeoutMs,
      deadlineMs: Math.max(request.deadlineMs ?? this.deadlineMs, request.timeoutMs ?? 0),
      maxRetryAfterMs: this.#options.maxRetryAfterMs ?? 60_000,
      signal: request.signal,
      ...(this.#options.random ? { random: this.#options.random } : {}),
      ...(this.#options.initialRetryDelayMs === undefined
        ? {}
        : { initialDelayMs: this.#options.initialRetryDelayMs }),
      ...(this.#options.maxRetryDelayMs === undefined
        ? {}
        : { maxDelayMs: this.#options.maxRetryDelayMs }),
      shouldRetry: (error) => isRetryableError(error) && (narrowed?.(error) ?? true),
      onRetry: ({ error, attempt, delayMs }) => {
        this.#options.logger?.warn?.(
          this.redactor.text(
            `${request.method} ${request.path}: attempt ${attempt} failed (${describe(error)}); retrying in ${delayMs} ms`,
          ),
        );
      },
    });
  }

  /** One attempt, no retries: the parsed JSON body or a typed error. */
  async requestOnce<T>(request: HttpRequest, context?: AttemptContext): Promise<T> {
    const response = await this.send(request, context);
    const text = await this.#readBody(response, request, context?.signal ?? request.signal);
    let json: unknown = {};
    if (text.trim() !== "") {
      try {
        json = JSON.parse(text);
      } catch (error) {
        throw new InvalidResponseError(
          `${request.method} ${this.#displayPath(request)} returned a body that is not JSON`,
          { cause: this.redactor.error(error) },
        );
      }
    }
    if (request.reply === undefined) return json as T;
    return checkReply(
      request.reply.schema,
      json,
      `${request.method} ${this.#displayPath(request)}`,
      request.reply.kind,
    ) as T;
  }

  /**
   * One attempt returning the raw successful `Response` (for streaming). Error statuses are
   * turned into typed errors; the body of a successful response is left unread.
   */
  async send(request: HttpRequest, context?: AttemptContext): Promise<Response> {
    const signal = anySignal(request.signal, context?.signal);
    const url = this.url(request);
    const headers: Record<string, string> = {
      accept: "application/json",
      ...this.#options.headers,
      ...request.headers,
      ...(await this.#auth.headers(signal)),
    };
    const init: {
      method: string;
      headers: Record<string, string>;
      body?: string | Uint8Array | ReadableStream<Uint8Array>;
      duplex?: "half";
      redirect?: "manual";
      signal?: AbortSignal;
      dispatcher?: unknown;
    } = {
      method: request.method,
      headers,
    };
    if (request.upload !== undefined) {
      headers["content-type"] = request.upload.contentType;
      const data = request.upload.data();
      if (typeof data === "string" || data instanceof Uint8Array) {
        init.body = data;
      } else {
        init.body = toReadableStream(data);
        init.duplex = "half"; // required by fetch for a streamed request body
      }
    } else if (request.body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(request.body);
    }
    // A 3xx the caller treats as an answer (e.g. 308 Resume Incomplete) must not be followed.
    if (request.acceptStatus?.some((status) => status >= 300 && status < 400)) {
      init.redirect = "manual";
    }
    if (signal) init.signal = signal;
    init.dispatcher = this.#options.dispatcher ?? sharedDispatcher();
    const fetchFn: FetchLike =
      this.#options.fetch ?? ((input, options) => globalThis.fetch(input, options));
    const started = Date.now();
    const path = this.#displayPath(request);
    let response: Response;
    try {
      response = await fetchFn(url, init as unknown as RequestInit);
    } catch (error) {
      throw this.#transportError(error, request, signal);
    }
    this.#options.logger?.debug?.(
      `${request.method} ${path} → ${response.status} (${Date.now() - started} ms)`,
    );
    if (response.ok || request.acceptStatus?.includes(response.status)) return response;
    const body = await this.#readBody(response, request, signal).catch(() => "");
    throw apiErrorFromResponse({
      httpStatus: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body,
      method: request.method,
      path,
      redactor: this.redactor,
      hinter: this.#options.errorHints,
    });
  }

  /** The full URL of a request. Never contains a credential. */
  url(request: Pick<HttpRequest, "path" | "query" | "apiVersion">): string {
    const version = request.apiVersion ?? this.apiVersion;
    const path = request.path.replace(/^\/+/, "");
    const url = new URL(`${this.baseUrl}/${version ? `${version}/` : ""}${path}`);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  #displayPath(request: Pick<HttpRequest, "path" | "apiVersion">): string {
    const version = request.apiVersion ?? this.apiVersion;
    return `/${version ? `${version}/` : ""}${request.path.replace(/^\/+/, "")}`;
  }

  async #readBody(
    response: Response,
    request: HttpRequest,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    try {
      return await response.text();
    } catch (error) {
      throw this.#transportError(error, request, signal);
    }
  }

  #transportError(error: unknown, request: HttpRequest, signal: AbortSignal | undefined): Error {
    if (error instanceof TunekitError) return error;
    if (request.signal?.aborted) return toAbortedError(request.signal);
    const path = this.#displayPath(request);
    const cause = this.redactor.error(error);
    if (signal?.aborted) {
      // The attempt's own timeout or the deadline: withRetry re-labels it precisely.
      return new TimeoutError(`${request.method} ${path} timed out`, { cause });
    }
    const detail = lowLevelDetail(error);
    return new ConnectionError(
      this.redactor.text(
        `${request.method} ${path} failed before an HTTP response arrived${detail ? `: ${detail}` : ""}`,
      ),
      {
        cause,
        hint: "Check the network connection and the base URL; the call is retried when safe",
      },
    );
  }
}

/** Streams an async iterable as a fetch body, pulling one chunk at a time. */
function toReadableStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}

function lowLevelDetail(error: unknown): string | undefined {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    parts.push(typeof code === "string" ? `${code} ${current.message}` : current.message);
    current = (current as { cause?: unknown }).cause;
  }
  return parts.length > 0 ? parts.join(" ← ") : undefined;
}

function describe(error: unknown): string {
  if (error instanceof ApiError)
    return `HTTP ${error.httpStatus}${error.status ? ` ${error.status}` : ""}`;
  if (error instanceof TunekitError) return error.code;
  return error instanceof Error ? error.name : "error";
}
