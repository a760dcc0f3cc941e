/**
 * The one example shape every backend trains on, and the options that say how records
 * become examples.
 */

/** One earlier turn of a conversation (see `Example.history`). */
export interface ChatTurn {
  role: "user" | "assistant";
  content: string;
}

/**
 * One training example: the model sees `input` (after the optional `instruction`
 * preamble) and learns to answer `output`. A multi-turn conversation is its last user turn
 * (`input`) and assistant turn (`output`) after the earlier turns in `history`.
 *
 * @example
 * ```ts
 * const chat: Example = {
 *   history: [{ role: "user", content: "41" }, { role: "assistant", content: "42" }],
 *   input: "and after that?",
 *   output: "43",
 * };
 * ```
 */
export interface Example {
  input: string;
  output: string;
  /** A preamble applied before the input (Alpaca `instruction`, chat `system` turn). */
  instruction?: string;
  /**
   * Earlier turns of a multi-turn conversation, oldest first: user and assistant turns
   * alternating, starting with a user turn. Absent for single-turn examples. The local
   * backend trains on every assistant turn (see `local.trainOn`), Vertex AI receives them
   * as `contents`; the Gemini API takes single turns only and refuses them.
   */
  history?: ChatTurn[];
}

/**
 * The record shapes tunekit recognises. `columns` is the explicit mapping given with
 * `options.columns`.
 */
export type DatasetShape = "gemini" | "alpaca" | "prompt-completion" | "chat" | "columns";

/**
 * Which field of each record holds the input, the output and (optionally) the instruction.
 *
 * @example
 * ```ts
 * await Dataset.load("faq.csv", { columns: { input: "question", output: "answer" } });
 * ```
 */
export interface ColumnMapping {
  input: string;
  output: string;
  instruction?: string;
}

/** Options shared by `Dataset.from` and `Dataset.load`. */
export interface DatasetOptions {
  /** Read these fields instead of detecting the shape of each record. */
  columns?: ColumnMapping;
  /** Stop collecting problems after this many; the error then says the list was cut. @default 100 */
  maxIssues?: number;
}

/** Options of `Dataset.load`. */
export interface LoadOptions extends DatasetOptions {
  /** Stops reading; `load` then rejects with `AbortedError`. */
  signal?: AbortSignal;
  /**
   * The file's text encoding, as a WHATWG label: `utf-8`, `windows-1252` (also `latin1`,
   * what Excel's "CSV" export writes in Western locales), `utf-16le`, `shift_jis`, …
   * Decoding is strict: a byte that is not valid in the encoding is an error naming its line
   * and column, never a silent U+FFFD. @default "utf-8"
   */
  encoding?: string;
  /**
   * The longest JSONL line or CSV record, in bytes. Reading stops at the first longer one
   * (a file without line breaks, binary data) instead of buffering it. @default 16 MiB
   */
  maxRecordBytes?: number;
  /**
   * The largest file read, in bytes (checked before reading). A `.json` file is parsed whole
   * and is limited to 256 MiB whatever this says; use JSONL for more. @default 1 GiB
   */
  maxFileBytes?: number;
}

/** How examples are positioned in their source: JSONL line, CSV row or array/JSON index. */
export type PositionKind = "line" | "row" | "index";

/** The default cap on collected problems. */
export const DEFAULT_MAX_ISSUES = 100;
