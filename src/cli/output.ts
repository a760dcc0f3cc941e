import { inspect } from "node:util";
import { formatDatasetIssue, InvalidDatasetError, isTunekitError } from "../core/errors.js";
import { exitCodeFor } from "./exit-codes.js";

/** Where a command writes. Tests pass their own streams. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  /** Answers to y/N questions; only read when it is a TTY. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Fires on the first Ctrl-C (SIGINT) or SIGTERM; each command decides what stopping means. */
  interrupt?: AbortSignal;
}

/** Global flags every command honours. */
export interface GlobalFlags {
  json?: boolean;
  verbose?: boolean;
}

/**
 * Prints results and errors the same way in every command: one JSON document on stdout
 * with `--json`, readable text otherwise; errors as one line plus a hint on stderr, and a
 * stack trace only with `--verbose`.
 */
export class Output {
  constructor(
    readonly io: CliIO,
    readonly flags: GlobalFlags,
  ) {}

  get json(): boolean {
    return this.flags.json === true;
  }

  /** Writes a human line to stdout (suppressed under --json, where only the result is printed). */
  line(text = ""): void {
    if (!this.json) this.io.stdout.write(`${text}\n`);
  }

  /** Writes a status line to stderr (never pollutes --json stdout). */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  /** The command's result: JSON under --json, else the human rendering. */
  result(data: unknown, human: () => string | undefined): void {
    if (this.json) {
      this.io.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    const text = human();
    if (text !== undefined && text !== "") this.io.stdout.write(`${text}\n`);
  }

  /** Reports an error and returns the exit code to use. */
  error(error: unknown): number {
    const code = exitCodeFor(error);
    if (this.json) {
      const body = isTunekitError(error)
        ? error.toJSON()
        : {
            name: "Error",
            code: "unexpected",
            message: error instanceof Error ? error.message : String(error),
          };
      this.io.stdout.write(`${JSON.stringify({ error: body }, null, 2)}\n`);
    }
    const hint = isTunekitError(error) ? error.hint : undefined;
    const full = error instanceof Error ? error.message : String(error);
    // API errors end their message with the hint; show it once, on its own line.
    const message = hint && full.endsWith(`. ${hint}`) ? full.slice(0, -(hint.length + 2)) : full;
    const [first, ...rest] = message.split("\n");
    this.io.stderr.write(`error: ${first}\n`);
    if (error instanceof InvalidDatasetError) {
      for (const issue of error.issues) this.io.stderr.write(`  - ${formatDatasetIssue(issue)}\n`);
    } else if (rest.length > 0) {
      this.io.stderr.write(`${rest.join("\n")}\n`);
    }
    if (hint && !message.includes(hint)) this.io.stderr.write(`hint: ${hint}\n`);
    if (this.flags.verbose) {
      this.io.stderr.write(
        `${error instanceof Error ? (error.stack ?? message) : inspect(error)}\n`,
      );
      if (error instanceof Error && error.cause !== undefined)
        this.io.stderr.write(`cause: ${inspect(error.cause, { depth: 4 })}\n`);
    } else if (!isTunekitError(error)) {
      this.io.stderr.write("hint: run again with --verbose for a stack trace\n");
    }
    return code;
  }
}
