/**
 * Google's JSON error shape (`{error: {code, message, status, details}}`) as the fake
 * service writes it, and the google.rpc codes it uses.
 */

/** google.rpc.Code numbers by name (the `code` of an operation's `error`). */
export const RPC_CODES = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A google.rpc status name, e.g. `"INVALID_ARGUMENT"`. */
export type RpcStatusName = keyof typeof RPC_CODES;

/** The HTTP status Google answers for each rpc status. */
export const HTTP_STATUS_FOR: Record<RpcStatusName, number> = {
  OK: 200,
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
};

/** The rpc status name Google uses for an HTTP error status. */
export function statusNameForHttp(httpStatus: number): RpcStatusName {
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
      return "ALREADY_EXISTS";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 499:
      return "CANCELLED";
    case 501:
      return "UNIMPLEMENTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return httpStatus >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
  }
}

/** One entry of `error.details`: a google.protobuf.Any in JSON form. */
export type ErrorDetail = { "@type": string } & Record<string, unknown>;

/** The body of a Google JSON error response. */
export interface GoogleErrorBody {
  error: {
    code: number;
    message: string;
    status: RpcStatusName;
    details?: ErrorDetail[];
  };
}

/** A field violation of a `google.rpc.BadRequest` detail. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** Build `{error: {code, message, status, details}}`. */
export function googleError(
  status: RpcStatusName,
  message: string,
  details: ErrorDetail[] = [],
  httpStatus: number = HTTP_STATUS_FOR[status],
): { httpStatus: number; body: GoogleErrorBody } {
  const error: GoogleErrorBody["error"] = { code: httpStatus, message, status };
  if (details.length > 0) error.details = details;
  return { httpStatus, body: { error } };
}

/** A `google.rpc.BadRequest` detail. */
export function badRequestDetail(violations: FieldViolation[]): ErrorDetail {
  return { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: violations };
}

/** A `google.rpc.ErrorInfo` detail for the Generative Language API. */
export function errorInfoDetail(
  reason: string,
  metadata: Record<string, string> = {},
): ErrorDetail {
  return {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    reason,
    domain: "googleapis.com",
    metadata: { service: "generativelanguage.googleapis.com", ...metadata },
  };
}

/** A `google.rpc.RetryInfo` detail (`retryDelay` like `"30s"`). */
export function retryInfoDetail(seconds: number): ErrorDetail {
  return { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${seconds}s` };
}

/** A `google.rpc.LocalizedMessage` detail. */
export function localizedMessageDetail(message: string): ErrorDetail {
  return { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en-US", message };
}
