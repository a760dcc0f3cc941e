import { isTunekitError } from "../core/errors.js";

/**
 * The CLI's exit codes. Stable: scripts may rely on them.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | unexpected failure (a bug, or an error tunekit does not classify) |
 * | 2 | bad command line (unknown option, missing argument) |
 * | 3 | invalid input: dataset, option or file (including a model or adapter that cannot be exported) |
 * | 4 | the remote service refused or failed (auth, not found, quota, server) |
 * | 5 | the tuning job failed or was cancelled |
 * | 6 | tuning is unavailable for this model/service, or the native addon is missing |
 * | 130 | interrupted (Ctrl-C) |
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  invalidInput: 3,
  remote: 4,
  tuning: 5,
  unavailable: 6,
  interrupted: 130,
} as const;

/** Maps an error to the exit code documented above. */
export function exitCodeFor(error: unknown): number {
  if (!isTunekitError(error)) return EXIT.failure;
  switch (error.code) {
    case "model_disposed": // a programming error, not the user's input or a remote failure
      return EXIT.failure;
    case "invalid_dataset":
    case "invalid_option":
    case "unsupported_option":
    case "model_load":
    case "export_failed":
      return EXIT.invalidInput;
    case "tuning_failed":
    case "tuning_cancelled":
    case "local_training":
      return EXIT.tuning;
    case "tuning_unavailable":
    case "native_load":
      return EXIT.unavailable;
    case "aborted":
      return EXIT.interrupted;
    default:
      return EXIT.remote;
  }
}
