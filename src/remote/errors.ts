/**
 * google.rpc.Status → tunekit's typed errors. Shared by every Google REST backend
 * (Gemini API, Vertex AI): nothing here knows which service answered.
 */
import {
  AlreadyExistsError,
  ApiError,
  type ApiErrorDetails,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServerError,
  type TunekitErrorOptions,
  UnavailableError,
} from "../core/errors.js";
import { parseRetryAfter } from "../core/retry.js";
import type { Redactor } from "./redact.js";

/** The `error` object of Google's JSON error body (google.rpc.Status plus the HTTP-era fields). */
export interface GoogleRpcStatus {
  code?: number;
  message?: string;
  status?: string;
  details?: unknown[];
}

/** What a backend may add to an error message: a hint for a status, a reason or a message. */
export interface ErrorHintContext {
  httpStatus: number;
  status: string | undefined;
  reason: string | undefined;
  message: string;
  /** `GET`, `POST`, … */
  method: string;
  /** The request path without host or query, e.g. `/v1beta/tunedModels/abc`. */
  path: string;
}

/** Returns a hint to show under the message, or undefined to keep the default. */
export type ErrorHinter = (context: ErrorHintContext) => string | undefined;

const GRPC_CODE_NAMES: Record<number, string> = {
  0: "OK",
  1: "CANCELLED",
  2: "UNKNOWN",
  3: "INVALID_ARGUMENT",
  4: "DEADLINE_EXCEEDED",
  5: "NOT_FOUND",
  6: "ALREADY_EXISTS",
  7: "PERMISSION_DENIED",
  8: "RESOURCE_EXHAUSTED",
  9: "FAILED_PRECONDITION",
  10: "ABORTED",
  11: "OUT_OF_RANGE",
  12: "UNIMPLEMENTED",
  13: "INTERNAL",
  14: "UNAVAILABLE",
  15: "DATA_LOSS",
  16: "UNAUTHENTICATED",
};

/** The google.rpc.Code name for a numeric gRPC code (`1` → `CANCELLED`). */
export function grpcCodeName(code: number | undefined): string | undefined {
  return code === undefined ? undefined : GRPC_CODE_NAMES[code];
}

/** Parses a body into a google.rpc.Status when it has Google's `{ error: {...} }` shape. */
export function parseGoogleErrorBody(body: string): GoogleRpcStatus | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  // Streaming endpoints may wrap the error in an array.
  if (Array.isArray(parsed)) parsed = parsed[0];
  if (!isRecord(parsed) || !isRecord(parsed.error)) return undefined;
  const error = parsed.error;
  const out: GoogleRpcStatus = {};
  if (typeof error.code === "number") out.code = error.code;
  if (typeof error.message === "string") out.message = error.message;
  if (typeof error.status === "string") out.status = error.status;
  if (Array.isArray(error.details)) out.details = error.details;
  return out;
}

/** `ErrorInfo.reason` from a details array, e.g. `API_KEY_INVALID`. */
export function errorInfoReason(details: readonly unknown[] | undefined): string | undefined {
  for (const detail of details ?? []) {
    if (
      isRecord(detail) &&
      typeof detail["@type"] === "string" &&
      detail["@type"].endsWith("google.rpc.ErrorInfo") &&
      typeof detail.reason === "string"
    ) {
      return detail.reason;
    }
  }
  return undefined;
}

/** `RetryInfo.retryDelay` (a Duration such as `"12s"` or `"1.5s"`) in milliseconds. */
export function retryInfoDelayMs(details: readonly unknown[] | undefined): number | undefined {
  for (const detail of details ?? []) {
    if (
      isRecord(detail) &&
      typeof detail["@type"] === "string" &&
      detail["@type"].endsWith("google.rpc.RetryInfo")
    ) {
      const delay = detail.retryDelay;
      if (typeof delay === "string") {
        const match = /^(\d+(?:\.\d+)?)s$/.exec(delay.trim());
        if (match?.[1]) return Math.round(Number(match[1]) * 1000);
      }
    }
  }
  return undefined;
}

/** Everything needed to turn one failed HTTP response into a typed error. */
export interface HttpErrorInput {
  httpStatus: number;
  statusText?: string;
  headers: Headers;
  body: string;
  method: string;
  path: string;
  redactor: Redactor;
  hinter?: ErrorHinter | undefined;
}

/**
 * Builds the typed error for an HTTP error response. The message reads
 * `<METHOD> <path> failed: <server message> (HTTP 403 PERMISSION_DENIED, reason X)` and a
 * `hint` says what to do. Secrets are scrubbed from the message and the details.
 */
export function apiErrorFromResponse(input: HttpErrorInput): ApiError {
  const { httpStatus, headers, method, path, redactor } = input;
  const rpc = parseGoogleErrorBody(input.body);
  const status = rpc?.status ?? grpcNameForHttp(httpStatus);
  const details = rpc?.details ? redactor.value(rpc.details) : [];
  const reason = errorInfoReason(details);
  const serverMessage = redactor.text(
    rpc?.message ?? (input.body.trim().slice(0, 300) || input.statusText || "no message"),
  );
  const retryAfterMs = parseRetryAfter(headers.get("retry-after")) ?? retryInfoDelayMs(details);
  const requestId = headers.get("x-request-id") ?? headers.get("x-goog-request-id") ?? undefined;

  const info: ApiErrorDetails = { httpStatus, details };
  if (status !== undefined) info.status = status;
  if (reason !== undefined) info.reason = reason;
  if (requestId) info.requestId = requestId;
  if (retryAfterMs !== undefined) info.retryAfterMs = retryAfterMs;

  const label = [`HTTP ${httpStatus}`, status, reason ? `reason ${reason}` : undefined]
    .filter(Boolean)
    .join(" ");
  const message = `${method} ${path} failed: ${serverMessage} (${label})`;
  const context: ErrorHintContext = {
    httpStatus,
    status,
    reason,
    message: serverMessage,
    method,
    path,
  };
  const hint = input.hinter?.(context) ?? defaultHint(context, retryAfterMs);
  const options: TunekitErrorOptions = hint === undefined ? {} : { hint };
  const fullMessage = hint === undefined ? message : `${message}. ${hint}`;
  return makeApiError(fullMessage, info, options);
}

/** Picks the error class from the google.rpc status name first, then the HTTP status. */
export function makeApiError(
  message: string,
  info: ApiErrorDetails,
  options: TunekitErrorOptions = {},
): ApiError {
  const { httpStatus, status, reason } = info;
  if (
    reason === "API_KEY_INVALID" ||
    reason === "API_KEY_EXPIRED" ||
    status === "UNAUTHENTICATED"
  ) {
    return new AuthenticationError(message, info, options);
  }
  switch (status) {
    case "ALREADY_EXISTS":
      return new AlreadyExistsError(message, info, options);
    case "ABORTED":
      return new ConflictError(message, info, options);
    case "NOT_FOUND":
      return new NotFoundError(message, info, options);
    case "PERMISSION_DENIED":
      return new PermissionDeniedError(message, info, options);
    case "RESOURCE_EXHAUSTED":
      if (httpStatus === 429) return new RateLimitError(message, info, options);
      break;
  }
  if (httpStatus === 400) return new BadRequestError(message, info, options);
  if (httpStatus === 401) return new AuthenticationError(message, info, options);
  if (httpStatus === 403) return new PermissionDeniedError(message, info, options);
  if (httpStatus === 404) return new NotFoundError(message, info, options);
  if (httpStatus === 409) return new ConflictError(message, info, options);
  if (httpStatus === 429) return new RateLimitError(message, info, options);
  if (httpStatus === 502 || httpStatus === 503 || httpStatus === 504) {
    return new UnavailableError(message, info, options);
  }
  if (httpStatus >= 500) return new ServerError(message, info, options);
  return new ApiError(message, info, options);
}

function grpcNameForHttp(httpStatus: number): string | undefined {
  switch (httpStatus) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 409:
      return "ABORTED";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 499:
      return "CANCELLED";
    case 500:
      return "INTERNAL";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return undefined;
  }
}

function defaultHint(
  context: ErrorHintContext,
  retryAfterMs: number | undefined,
): string | undefined {
  const { httpStatus, status, reason, message } = context;
  if (reason === "API_KEY_INVALID") {
    return "The API key was rejected: check the key you passed (or GEMINI_API_KEY / GOOGLE_API_KEY) and that it belongs to a project with the API enabled";
  }
  if (httpStatus === 403 && /insufficient authentication scopes/i.test(message)) {
    return "The credentials carry no OAuth scope this method needs. An API key has no scopes at all: if the service refuses API keys for this call, use an OAuth access token (accessToken option) with the scope the method documents; if you already use OAuth, request that scope when you mint the token";
  }
  if (reason === "SERVICE_DISABLED") {
    return "The API is not enabled for the project: enable it in the Google Cloud console, or set the quota project (x-goog-user-project) to a project where it is enabled";
  }
  if (status === "UNAUTHENTICATED" || httpStatus === 401) {
    return "The credentials are missing, invalid or expired: refresh the access token or check the API key";
  }
  if (httpStatus === 403) {
    return "The caller is not allowed to do this: check that the key or token belongs to the project and user that own the resource";
  }
  if (httpStatus === 429) {
    return retryAfterMs === undefined
      ? "Rate limit or quota exhausted: wait and retry, or raise the quota"
      : `Rate limit or quota exhausted: the server asked to wait ${Math.ceil(retryAfterMs / 1000)} s`;
  }
  if (status === "UNIMPLEMENTED" || httpStatus === 501) {
    return "The service does not implement this method at this path/version";
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
