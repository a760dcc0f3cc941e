/**
 * Reads records from arrays and files and feeds them to a `RecordNormalizer`.
 *
 * Positions: JSONL → 1-based physical `line` (blank lines are skipped but still counted,
 * so numbers match an editor); CSV → 1-based `row` counting the header as row 1, one row
 * per CSV record (a quoted field may span several lines; blank lines are skipped and not
 * counted), so the first data record is row 2, as in a spreadsheet; arrays and `.json`
 * files → 0-based `index`.
 */
import { stat } from "node:fs/promises";
import { extname } from "node:path";
import { Readable } from "node:stream";
import { CsvError, parse as parseCsv } from "csv-parse";
import { InvalidOptionError, throwIfAborted } from "../errors.js";
import {
  type ColumnMapping,
  type DatasetOptions,
  DEFAULT_MAX_ISSUES,
  type LoadOptions,
  type PositionKind,
} from "./example.js";
import { IssueCollector, resolveMaxIssues } from "./issues.js";
import { type NormalizedRecords, RecordNormalizer } from "./normalize.js";
import {
  formatBytes,
  readLines,
  readText,
  readWholeText,
  resolveTextOptions,
  TextReadError,
  type TextReadOptions,
} from "./read-text.js";
import { describeType, isBlank } from "./text.js";

/** The file types `Dataset.load` reads, by extension. */
export type DatasetFileType = "json" | "jsonl" | "csv";

const FILE_TYPES: Readonly<Record<string, DatasetFileType>> = {
  ".json": "json",
  ".jsonl": "jsonl",
  ".ndjson": "jsonl",
  ".csv": "csv",
};

/** Keys under which a `.json` object may hold its array of records. */
const ARRAY_KEYS = ["examples", "data", "records", "rows"] as const;

function checkColumns(columns: ColumnMapping | undefined): void {
  if (columns === undefined) return;
  for (const key of ["input", "output"] as const) {
    if (typeof columns[key] !== "string" || columns[key].length === 0) {
      throw new InvalidOptionError(
        `columns.${key}`,
        `columns.${key} must name the field that holds the ${key}`,
      );
    }
  }
  if (columns.instruction !== undefined && typeof columns.instruction !== "string") {
    throw new InvalidOptionError("columns.instruction", "columns.instruction must be a string");
  }
}

function finish(
  normalizer: RecordNormalizer,
  issues: IssueCollector,
  source: string,
): NormalizedRecords {
  if (normalizer.examples.length === 0 && issues.errorCount === 0) {
    issues.dataset("no examples found: the dataset is empty");
  }
  issues.throwIfErrors(source);
  return normalizer.result();
}

/** Normalises an in-memory array of records (positions are 0-based indexes). */
export function normalizeArray(
  records: readonly unknown[],
  options: DatasetOptions,
  source: string,
): NormalizedRecords {
  if (!Array.isArray(records)) {
    throw new InvalidOptionError(
      "records",
      `Dataset.from expects an array of records, got ${describeType(records)}`,
    );
  }
  checkColumns(options.columns);
  const issues = new IssueCollector(resolveMaxIssues(options.maxIssues, DEFAULT_MAX_ISSUES));
  const normalizer = new RecordNormalizer("index", options.columns, issues);
  addAll(normalizer, issues, records);
  return finish(normalizer, issues, source);
}

function addAll(normalizer: RecordNormalizer, issues: IssueCollector, records: readonly unknown[]) {
  for (let i = 0; i < records.length; i++) {
    normalizer.add(records[i], i);
    if (issues.truncated) break;
  }
}

/** The file type of `path` by its extension, or an `InvalidOptionError`. */
export function fileTypeOf(path: string): DatasetFileType {
  const type = FILE_TYPES[extname(path).toLowerCase()];
  if (type === undefined) {
    throw new InvalidOptionError(
      "path",
      `cannot load ${path}: unknown file type; use .json, .jsonl (or .ndjson) or .csv`,
    );
  }
  return type;
}

/**
 * Reads a dataset file; throws `InvalidDatasetError` listing every problem (a file that
 * cannot be read as text — too large, wrong encoding, binary — is one problem that stops
 * reading), `InvalidOptionError` for an unreadable path or a bad option, or `AbortedError`.
 */
export async function loadFile(path: string, options: LoadOptions): Promise<NormalizedRecords> {
  const type = fileTypeOf(path);
  checkColumns(options.columns);
  const maxIssues = resolveMaxIssues(options.maxIssues, DEFAULT_MAX_ISSUES);
  const text = resolveTextOptions(options);
  throwIfAborted(options.signal);
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error("not a regular file");
  } catch (error) {
    throw unreadable(path, error);
  }
  const issues = new IssueCollector(maxIssues);
  const kind: PositionKind = type === "jsonl" ? "line" : type === "csv" ? "row" : "index";
  const normalizer = new RecordNormalizer(kind, options.columns, issues);
  try {
    if (type === "jsonl") await readJsonl(path, normalizer, issues, text);
    else if (type === "csv") await readCsv(path, normalizer, issues, options, text);
    else await readJson(path, normalizer, issues, text);
  } catch (error) {
    throwIfAborted(options.signal);
    if (!(error instanceof TextReadError)) throw unreadable(path, error);
    if (error.line === undefined) issues.dataset(error.message);
    else issues.record({ kind: "line", value: error.line }, undefined, error.message);
  }
  throwIfAborted(options.signal);
  return finish(normalizer, issues, path);
}

/** An I/O failure (missing file, directory, permissions, disk error) as a typed error. */
function unreadable(path: string, error: unknown): InvalidOptionError {
  const code = (error as { code?: unknown } | null)?.code;
  const why =
    code === "ERR_FS_FILE_TOO_LARGE"
      ? "the file is too large to read"
      : error instanceof Error
        ? error.message
        : String(error);
  return new InvalidOptionError("path", `cannot read dataset file ${path}: ${why}`, {
    cause: error,
  });
}

async function readJsonl(
  path: string,
  normalizer: RecordNormalizer,
  issues: IssueCollector,
  text: TextReadOptions,
): Promise<void> {
  for await (const lines of readLines(path, text)) {
    if (text.signal?.aborted) return;
    for (const { text: line, line: lineNumber } of lines) {
      if (isBlank(line)) continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (error) {
        issues.record({ kind: "line", value: lineNumber }, undefined, jsonReason(error));
        if (issues.truncated) return;
        continue;
      }
      normalizer.add(record, lineNumber);
      if (issues.truncated) return;
    }
  }
}

async function readJson(
  path: string,
  normalizer: RecordNormalizer,
  issues: IssueCollector,
  text: TextReadOptions,
): Promise<void> {
  const body = await readWholeText(path, text);
  if (isBlank(body)) {
    issues.dataset("the file is empty: no examples found");
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    issues.dataset(jsonReason(error, body));
    return;
  }
  const records = recordsOf(parsed);
  if (records === undefined) {
    issues.dataset(
      `expected a JSON array of records (or an object with an array under ${ARRAY_KEYS.join(", ")}), ` +
        `got ${describeType(parsed)}`,
    );
    return;
  }
  addAll(normalizer, issues, records);
}

function recordsOf(parsed: unknown): readonly unknown[] | undefined {
  if (Array.isArray(parsed)) return parsed;
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const object = parsed as Record<string, unknown>;
  for (const key of ARRAY_KEYS) {
    const value = object[key];
    if (Array.isArray(value)) return value;
  }
  // The Gemini create body's `trainingData.examples.examples`.
  const nested = (object.examples as Record<string, unknown> | undefined)?.examples;
  return Array.isArray(nested) ? nested : undefined;
}

/** "not valid JSON: …", with line and column when the parser gives a position. */
function jsonReason(error: unknown, text?: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = text === undefined ? null : /at position (\d+)/.exec(message);
  if (match?.[1] !== undefined && text !== undefined) {
    const offset = Number(match[1]);
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < offset && i < text.length; i++) {
      if (text.charCodeAt(i) === 10) {
        line++;
        lineStart = i + 1;
      }
    }
    return `not valid JSON (line ${line}, column ${offset - lineStart + 1}): ${message}`;
  }
  return `not valid JSON: ${message}`;
}

async function readCsv(
  path: string,
  normalizer: RecordNormalizer,
  issues: IssueCollector,
  options: LoadOptions,
  text: TextReadOptions,
): Promise<void> {
  const source = Readable.from(readText(path, text, "CSV line"));
  const parser = parseCsv({
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    max_record_size: text.maxRecordBytes,
  });
  source.on("error", (error) => parser.destroy(error));
  source.pipe(parser);
  let header: string[] | undefined;
  let messagesColumn = -1;
  let row = 0;
  try {
    for await (const fields of parser as AsyncIterable<string[]>) {
      row++;
      if (options.signal?.aborted) break;
      if (header === undefined) {
        header = fields;
        if (!checkHeader(header, options.columns, issues)) return;
        messagesColumn = options.columns === undefined ? header.indexOf("messages") : -1;
        continue;
      }
      if (fields.length !== header.length) {
        issues.record(
          { kind: "row", value: row },
          undefined,
          `the row has ${fields.length} fields but the header has ${header.length}`,
        );
        if (issues.truncated) break;
        continue;
      }
      // No prototype: a header may name any column, `__proto__` included.
      const record: Record<string, unknown> = Object.create(null);
      for (let i = 0; i < header.length; i++) record[header[i] as string] = fields[i];
      if (messagesColumn >= 0) {
        // A chat CSV holds each conversation as JSON text in its `messages` cell.
        try {
          record.messages = JSON.parse(fields[messagesColumn] as string);
        } catch (error) {
          issues.record({ kind: "row", value: row }, "messages", jsonReason(error));
          if (issues.truncated) break;
          continue;
        }
      }
      normalizer.add(record, row);
      if (issues.truncated) break;
    }
  } catch (error) {
    if (options.signal?.aborted) return;
    if (error instanceof CsvError) {
      // `records` counts the records parsed before the bad one; rows count from the header.
      const records = (error as CsvError & { records?: unknown }).records;
      const at = typeof records === "number" ? records + 1 : row + 1;
      issues.record({ kind: "row", value: at }, undefined, csvReason(error, text));
      return;
    }
    throw error;
  } finally {
    source.destroy();
    parser.destroy();
  }
  if (header === undefined && !options.signal?.aborted) {
    issues.dataset("the file is empty: no header row and no examples");
  }
}

/** "not valid CSV: …" for every csv-parse error code, in words for the common ones. */
function csvReason(error: CsvError, text: TextReadOptions): string {
  if (error.code === "CSV_MAX_RECORD_SIZE") {
    return (
      `not valid CSV: a record is longer than ${formatBytes(text.maxRecordBytes)} (maxRecordBytes), ` +
      "usually an unclosed quote that swallows the rest of the file; reading stopped here"
    );
  }
  // csv-parse quotes the field it stopped in, which may be megabytes long.
  const message = error.message.length > 300 ? `${error.message.slice(0, 300)}…` : error.message;
  return `not valid CSV: ${message} (${error.code})`;
}

/** Checks the header row (row 1); returns false when reading cannot go on. */
function checkHeader(
  header: readonly string[],
  columns: ColumnMapping | undefined,
  issues: IssueCollector,
): boolean {
  const seen = new Set<string>();
  let ok = true;
  for (const name of header) {
    if (seen.has(name)) {
      issues.record({ kind: "row", value: 1 }, name, `the header names column "${name}" twice`);
      ok = false;
    }
    seen.add(name);
  }
  if (columns !== undefined) {
    for (const name of [columns.input, columns.output, columns.instruction]) {
      if (name !== undefined && !seen.has(name)) {
        issues.record(
          { kind: "row", value: 1 },
          name,
          `column "${name}" (from options.columns) is not in the header: ${header.join(", ")}`,
        );
        ok = false;
      }
    }
  }
  return ok;
}
