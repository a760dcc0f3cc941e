/**
 * Maps errors from the native core onto tunekit's error classes. The core's codes are
 * stable (`native/core/src/error.rs`): `model_load`, `invalid_option`, `aborted`,
 * `local_training`, `export_failed`, `internal`; load errors also carry a finer `kind`
 * (`truncated`, `shape_mismatch`, `missing_tokenizer`, …).
 */
import {
  AbortedError,
  ExportError,
  InvalidOptionError,
  LocalTrainingError,
  ModelLoadError,
  TunekitError,
} from "../core/errors.js";

/** Load-failure kinds the native core reports on `ModelLoadError.kind`. */
export type ModelLoadErrorKind =
  | "not_found"
  | "io"
  | "invalid_json"
  | "invalid_config"
  | "unsupported_architecture"
  | "truncated"
  | "invalid_header"
  | "unsupported_dtype"
  | "shape_mismatch"
  | "missing_tensor"
  | "missing_tokenizer"
  | "invalid_tokenizer"
  | "malformed_gguf"
  /** A PEFT adapter tunekit cannot apply exactly as PEFT does; the message says why and the fix. */
  | "unsupported_adapter";

interface NativeErrorShape {
  code?: unknown;
  message?: unknown;
  kind?: unknown;
}

/** What the failing call was doing, for messages and for `ModelLoadError.path`. */
export interface NativeErrorContext {
  /** The model directory, when known. */
  path?: string;
  /** The JS option a rejected value came from, e.g. `prompt` or `ids`. */
  option?: string;
}

/**
 * Converts anything thrown or reported by the addon into a `TunekitError`:
 * `model_load` → `ModelLoadError` (with `kind` attached), `invalid_option` →
 * `InvalidOptionError`, `aborted` → `AbortedError`, `export_failed` → `ExportError`, everything else (`local_training`,
 * `internal`, napi conversion failures) → `LocalTrainingError` keeping the native code in the
 * message. Errors that already are tunekit errors pass through unchanged.
 */
export function fromNativeError(error: unknown, context: NativeErrorContext = {}): TunekitError {
  if (error instanceof TunekitError) return error;
  const shape: NativeErrorShape =
    typeof error === "object" && error !== null ? (error as NativeErrorShape) : {};
  const code = typeof shape.code === "string" ? shape.code : "internal";
  const message =
    typeof shape.message === "string" && shape.message.length > 0 ? shape.message : String(error);
  const cause = error instanceof Error ? error : undefined;
  const options = cause === undefined ? {} : { cause };
  switch (code) {
    case "model_load": {
      const err = new ModelLoadError(
        message,
        context.path === undefined ? options : { ...options, path: context.path },
      );
      if (typeof shape.kind === "string") {
        Object.defineProperty(err, "kind", { value: shape.kind, enumerable: true });
      }
      return err;
    }
    case "invalid_option": {
      const option = /^invalid option (\w+):/.exec(message)?.[1] ?? context.option ?? "options";
      return new InvalidOptionError(option, message, options);
    }
    case "aborted":
      return new AbortedError("The operation was aborted", options);
    case "export_failed":
      return new ExportError(
        message,
        context.path === undefined ? options : { ...options, path: context.path },
      );
    default:
      return new LocalTrainingError(`native core error (${code}): ${message}`, options);
  }
}

/** The `kind` the native core attached to a `ModelLoadError`, if any. */
export function modelLoadErrorKind(error: unknown): ModelLoadErrorKind | undefined {
  if (!(error instanceof ModelLoadError)) return undefined;
  const kind = (error as ModelLoadError & { kind?: unknown }).kind;
  return typeof kind === "string" ? (kind as ModelLoadErrorKind) : undefined;
}
