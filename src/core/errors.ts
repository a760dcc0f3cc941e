/**
 * One error hierarchy for every backend. Each class carries a stable `code` that
 * scripts can switch on; the native core maps its failures to the same codes.
 *
 * @example
 * ```ts
 * try {
 *   await tuner.tune(request);
 * } catch (error) {
 *   if (error instanceof InvalidDatasetError) console.error(error.issues);
 *   else if (isTunekitError(error) && error.code === "rate_limited") retryLater();
 *   else throw error;
 * }
 * ```
 */

/** Every stable error code tunekit throws. */
export type TunekitErrorCode =
  | "invalid_dataset"
  | "invalid_option"
  | "unsupported_option"
  | "api_error"
  | "bad_request"
  | "authentication"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "conflict"
  | "rate_limited"
  | "server_error"
  | "unavailable"
  | "connection"
  | "timeout"
  | "aborted"
  | "tuning_failed"
  | "tuning_cancelled"
  | "tuning_unavailable"
  | "native_load"
  | "local_training"
  | "model_load"
  | "model_disposed"
  | "export_failed"
  | "invalid_response";

export interface TunekitErrorOptions {
  cause?: unknown;
  /** A short suggestion of what to do next, shown by the CLI under the message. */
  hint?: string;
}

/** Base class of every error tunekit throws on purpose. */
export class TunekitError extends Error {
  readonly code: TunekitErrorCode;
  readonly hint: string | undefined;

  constructor(code: TunekitErrorCode, message: string, options: TunekitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.name = new.target.name;
  }

  /** A plain object safe to log or serialise (no secrets are ever stored on errors). */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, hint: this.hint };
  }
}

/** True when `value` is any tunekit error (works across duplicated package copies). */
export function isTunekitError(value: unknown): value is TunekitError {
  return (
    value instanceof TunekitError ||
    (value instanceof Error &&
      typeof (value as { code?: unknown }).code === "string" &&
      typeof (value as { toJSON?: unknown }).toJSON === "function" &&
      value.name.endsWith("Error"))
  );
}

/** Where a problem sits in a dataset: the 1-based line (JSONL), row (CSV) or 0-based index (array/JSON). */
export interface DatasetPosition {
  kind: "line" | "row" | "index";
  value: number;
}

/** One problem found while validating a dataset. */
export interface DatasetIssue {
  /** Where the example is; absent for whole-dataset problems (too few examples, payload size). */
  position?: DatasetPosition;
  /** The field at fault (`output`, `messages[1].content`, …), when there is one. */
  field?: string;
  /** What is wrong, in words a user can act on. */
  reason: string;
  severity: "error" | "warning";
}

/** Formats an issue as `line 3, field "output": empty output`. */
export function formatDatasetIssue(issue: DatasetIssue): string {
  const where: string[] = [];
  if (issue.position) where.push(`${issue.position.kind} ${issue.position.value}`);
  if (issue.field) where.push(`field "${issue.field}"`);
  return where.length > 0 ? `${where.join(", ")}: ${issue.reason}` : issue.reason;
}

/** The dataset failed to load or failed validation; `issues` lists every problem found (up to a cap). */
export class InvalidDatasetError extends TunekitError {
  readonly issues: readonly DatasetIssue[];
  readonly source: string | undefined;

  constructor(
    issues: readonly DatasetIssue[],
    options: TunekitErrorOptions & { source?: string; truncated?: boolean } = {},
  ) {
    const errors = issues.filter((i) => i.severity === "error");
    const shown = errors.slice(0, 5).map(formatDatasetIssue);
    const more = errors.length - shown.length;
    const origin = options.source ? ` in ${options.source}` : "";
    const count = `${errors.length}${options.truncated ? "+" : ""}`;
    const message =
      `Invalid dataset${origin}: ${count} problem${errors.length === 1 ? "" : "s"}\n` +
      shown.map((line) => `  - ${line}`).join("\n") +
      (more > 0 ? `\n  … and ${more} more (see error.issues)` : "");
    super("invalid_dataset", message, options);
    this.issues = issues;
    this.source = options.source;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), source: this.source, issues: this.issues };
  }
}

/** A tuning option, hyperparameter or argument is invalid. `path` names the option. */
export class InvalidOptionError extends TunekitError {
  readonly path: string;
  constructor(path: string, message: string, options: TunekitErrorOptions = {}) {
    super("invalid_option", message, options);
    this.path = path;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), path: this.path };
  }
}

/** A valid option that this backend cannot honour (e.g. `batchSize` on Vertex AI). */
export class UnsupportedOptionError extends TunekitError {
  readonly option: string;
  readonly backend: string;
  constructor(backend: string, option: string, message: string, options: TunekitErrorOptions = {}) {
    super("unsupported_option", message, options);
    this.backend = backend;
    this.option = option;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), backend: this.backend, option: this.option };
  }
}

/** Details parsed from a google.rpc.Status error body. */
export interface ApiErrorDetails {
  /** HTTP status code of the response. */
  httpStatus: number;
  /** google.rpc.Code name such as `INVALID_ARGUMENT`, when the server sent one. */
  status?: string;
  /** `ErrorInfo.reason` such as `API_KEY_INVALID`, when present. */
  reason?: string;
  /** The raw `details` array of the google.rpc.Status. */
  details?: readonly unknown[];
  /** The request id the server returned, if any. */
  requestId?: string;
  /** Milliseconds the server asked us to wait (from `Retry-After`). */
  retryAfterMs?: number;
}

/** The server answered with an error. Subclasses name the category; `httpStatus`, `status` and `details` carry the rest. */
export class ApiError extends TunekitError {
  readonly httpStatus: number;
  readonly status: string | undefined;
  readonly reason: string | undefined;
  readonly details: readonly unknown[];
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    info: ApiErrorDetails,
    options: TunekitErrorOptions & { code?: TunekitErrorCode } = {},
  ) {
    super(options.code ?? "api_error", message, options);
    this.httpStatus = info.httpStatus;
    this.status = info.status;
    this.reason = info.reason;
    this.details = info.details ?? [];
    this.requestId = info.requestId;
    this.retryAfterMs = info.retryAfterMs;
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      httpStatus: this.httpStatus,
      status: this.status,
      reason: this.reason,
      details: this.details,
      requestId: this.requestId,
    };
  }
}

type ApiErrorArgs = [message: string, info: ApiErrorDetails, options?: TunekitErrorOptions];

/** 400 INVALID_ARGUMENT / FAILED_PRECONDITION / OUT_OF_RANGE. */
export class BadRequestError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "bad_request" });
  }
}
/** 401 UNAUTHENTICATED: the key or token is missing, wrong or expired. */
export class AuthenticationError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "authentication" });
  }
}
/** 403 PERMISSION_DENIED. */
export class PermissionDeniedError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "permission_denied" });
  }
}
/** 404 NOT_FOUND. */
export class NotFoundError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "not_found" });
  }
}
/** 409 ALREADY_EXISTS. */
export class AlreadyExistsError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "already_exists" });
  }
}
/** 409 ABORTED and other conflicts. */
export class ConflictError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "conflict" });
  }
}
/** 429 RESOURCE_EXHAUSTED. */
export class RateLimitError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "rate_limited" });
  }
}
/** 500 INTERNAL and other 5xx without a more specific class. */
export class ServerError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "server_error" });
  }
}
/** 503 UNAVAILABLE (and 502/504 gateways). */
export class UnavailableError extends ApiError {
  constructor(...[message, info, options]: ApiErrorArgs) {
    super(message, info, { ...options, code: "unavailable" });
  }
}

/**
 * The server's reply did not have the shape the API documents. `field` names the offending
 * field of the reply (e.g. `tuningTask.snapshots[2].step`) when one is at fault.
 */
export class InvalidResponseError extends TunekitError {
  readonly field: string | undefined;
  constructor(message: string, options: TunekitErrorOptions & { field?: string } = {}) {
    super("invalid_response", message, options);
    this.field = options.field;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), field: this.field };
  }
}

/** The request never got an HTTP answer (DNS, refused, reset). */
export class ConnectionError extends TunekitError {
  constructor(message: string, options: TunekitErrorOptions = {}) {
    super("connection", message, options);
  }
}

/** An attempt or an overall deadline ran out. */
export class TimeoutError extends TunekitError {
  readonly timeoutMs: number | undefined;
  constructor(message: string, options: TunekitErrorOptions & { timeoutMs?: number } = {}) {
    super("timeout", message, options);
    this.timeoutMs = options.timeoutMs;
  }
}

/** The caller's AbortSignal fired. Waiting stopped; the job itself was not cancelled by this. */
export class AbortedError extends TunekitError {
  constructor(message = "The operation was aborted", options: TunekitErrorOptions = {}) {
    super("aborted", message, options);
  }
}

/** The tuning job ended in a failed state. */
export class TuningFailedError extends TunekitError {
  readonly jobName: string;
  constructor(jobName: string, message: string, options: TunekitErrorOptions = {}) {
    super("tuning_failed", message, options);
    this.jobName = jobName;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), jobName: this.jobName };
  }
}

/** The tuning job was cancelled (by `job.cancel()`, another client, or Ctrl-C). */
export class TuningCancelledError extends TunekitError {
  readonly jobName: string;
  constructor(
    jobName: string,
    message = `Tuning job ${jobName} was cancelled`,
    options: TunekitErrorOptions = {},
  ) {
    super("tuning_cancelled", message, options);
    this.jobName = jobName;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), jobName: this.jobName };
  }
}

/** Tuning is not offered for this base model or on this service (e.g. the Gemini API since May 2025). */
export class TuningUnavailableError extends TunekitError {
  readonly baseModel: string | undefined;
  constructor(message: string, options: TunekitErrorOptions & { baseModel?: string } = {}) {
    super("tuning_unavailable", message, options);
    this.baseModel = options.baseModel;
  }
}

/** The native addon could not be loaded (not built, wrong platform, ABI mismatch). */
export class NativeLoadError extends TunekitError {
  constructor(message: string, options: TunekitErrorOptions = {}) {
    super("native_load", message, options);
  }
}

/** A model directory or file could not be loaded (missing, malformed, unsupported). */
export class ModelLoadError extends TunekitError {
  readonly path: string | undefined;
  constructor(message: string, options: TunekitErrorOptions & { path?: string } = {}) {
    super("model_load", message, options);
    this.path = options.path;
  }
}

/** A local model was used after `dispose()` released its weights. */
export class ModelDisposedError extends TunekitError {
  readonly path: string;
  constructor(path: string) {
    super("model_disposed", `the model ${path} was disposed; load it again to use it`);
    this.path = path;
  }
}

/**
 * An export (e.g. to llama.cpp's GGUF) could not be produced: the model or adapter cannot be
 * represented in the target format (an adapter on `lm_head` of a tied model, an unsupported
 * architecture or tokenizer, …) or the output file could not be written. Nothing is left
 * half-written.
 */
export class ExportError extends TunekitError {
  readonly path: string | undefined;
  constructor(message: string, options: TunekitErrorOptions & { path?: string } = {}) {
    super("export_failed", message, options);
    this.path = options.path;
  }
}

/** On-device training failed (out of memory, NaN loss, I/O error while checkpointing, …). */
export class LocalTrainingError extends TunekitError {
  constructor(message: string, options: TunekitErrorOptions = {}) {
    super("local_training", message, options);
  }
}

/** Throws `AbortedError` (carrying the signal's reason as cause) when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw toAbortedError(signal);
}

/** Converts an aborted signal's reason into an `AbortedError`, keeping a tunekit reason as is. */
export function toAbortedError(signal: AbortSignal): TunekitError {
  const reason: unknown = signal.reason;
  if (reason instanceof TunekitError) return reason;
  return new AbortedError("The operation was aborted", { cause: reason });
}
