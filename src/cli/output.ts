import { inspect } from "node:util";
import {
  type DatasetIssue,
  formatDatasetIssue,
  InvalidDatasetError,
  isTunekitError,
} from "../core/errors.js";
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
      for (const line of summarizeIssues(error.issues)) this.io.stderr.write(`  ${line}\n`);
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

/** How many issues of one kind are printed before the rest are counted. */
const SHOWN_PER_KIND = 3;

/**
 * Dataset issues as lines for a terminal: each kind of problem (same field, same reason
 * once numbers are set aside) shows its first few occurrences, then one line counting the
 * rest and where they are, so 100 rows cut by a small `--max-length` read as 4 lines, not 100.
 *
 * @example
 * ```ts
 * summarizeIssues(error.issues); // ["- line 1, field \"input\": …", …, "… and 97 more like these (lines 4–100)"]
 * ```
 */
export function summarizeIssues(issues: readonly DatasetIssue[]): string[] {
  const kinds = new Map<string, DatasetIssue[]>();
  for (const issue of issues) {
    const key = `${issue.severity}|${issue.field ?? ""}|${issue.reason.replace(/\d+(\.\d+)?/g, "#")}`;
    const group = kinds.get(key);
    if (group) group.push(issue);
    else kinds.set(key, [issue]);
  }
  const lines: string[] = [];
  for (const group of kinds.values()) {
    for (const issue of group.slice(0, SHOWN_PER_KIND))
      lines.push(`- ${formatDatasetIssue(issue)}`);
    const rest = group.slice(SHOWN_PER_KIND);
    if (rest.length > 0) lines.push(`… and ${rest.length} more like these${where(rest)}`);
  }
  return lines;
}

/** " (lines 4–100)", " (rows 3, 9, 12)" or "" for issues without positions. */
function where(issues: readonly DatasetIssue[]): string {
  const positions = issues.flatMap((issue) => (issue.position ? [issue.position] : []));
  const kind = positions[0]?.kind;
  if (kind === undefined || positions.some((p) => p.kind !== kind)) return "";
  const values = positions.map((p) => p.value);
  const contiguous = values.every((v, i) => i === 0 || v === (values[i - 1] as number) + 1);
  const noun = kind === "index" ? "indexes" : `${kind}s`;
  if (contiguous && values.length > 2) return ` (${noun} ${values[0]}–${values.at(-1)})`;
  const shown = values.slice(0, 6).join(", ");
  return ` (${noun} ${shown}${values.length > 6 ? ", …" : ""})`;
}
