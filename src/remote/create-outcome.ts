/**
 * What a failed create attempt proves about the service. A create whose resource id the
 * service picks (Vertex AI tuning jobs) may be sent again only when the failure proves the
 * service did not act on it; any other failure leaves the outcome open, and the caller must
 * look for its own resource instead of creating another.
 */
import {
  AbortedError,
  ApiError,
  ConnectionError,
  InvalidResponseError,
  TimeoutError,
  TunekitError,
} from "../core/errors.js";

/** Connection failures that happen before a request can reach the service. */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * True when `error` proves the service did not act on the request: a 4xx answer (the request
 * was refused: invalid, unauthorised, rate limited, …), 501 (not implemented) or 503
 * (UNAVAILABLE), or a connection that never opened. A timeout, a reset, a lost answer, and a
 * 500, 502 or 504 (the service may have acted before it failed) prove nothing.
 */
export function serviceDidNotAct(error: unknown): boolean {
  if (error instanceof ApiError) {
    const status = error.httpStatus;
    return (status >= 400 && status < 500) || status === 501 || status === 503;
  }
  if (error instanceof ConnectionError) return causeCodes(error).some((c) => NOT_SENT_CODES.has(c));
  return false;
}

function causeCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 6; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/**
 * The same kind of error with `note` added to its message and set as its hint: for a create
 * whose outcome is unknown (it may have made the resource), the note says what may exist and
 * how to re-attach. The original error becomes the cause. Errors of other kinds are returned
 * unchanged.
 */
export function withOutcomeNote(error: unknown, note: string): unknown {
  if (!(error instanceof TunekitError) || error.message.includes(note)) return error;
  const message = `${error.message}. ${note}`;
  if (error instanceof ApiError) {
    const Kind = error.constructor as new (
      message: string,
      info: ConstructorParameters<typeof ApiError>[1],
      options: { cause: unknown; hint: string },
    ) => ApiError;
    return new Kind(
      message,
      {
        httpStatus: error.httpStatus,
        details: error.details,
        ...(error.status === undefined ? {} : { status: error.status }),
        ...(error.reason === undefined ? {} : { reason: error.reason }),
        ...(error.requestId === undefined ? {} : { requestId: error.requestId }),
        ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
      },
      { cause: error, hint: note },
    );
  }
  if (error instanceof TimeoutError) {
    return new TimeoutError(message, {
      cause: error,
      hint: note,
      ...(error.timeoutMs === undefined ? {} : { timeoutMs: error.timeoutMs }),
    });
  }
  if (error instanceof AbortedError) return new AbortedError(message, { cause: error, hint: note });
  if (error instanceof ConnectionError)
    return new ConnectionError(message, { cause: error, hint: note });
  if (error instanceof InvalidResponseError)
    return new InvalidResponseError(message, { cause: error, hint: note });
  return error;
}
