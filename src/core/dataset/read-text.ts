/**
 * Reads a dataset file as text, with the guards a file from anywhere needs: a size limit,
 * a per-line (per-record) limit that stops before one line can exhaust memory, strict
 * decoding (an invalid byte is reported with its line and column, never replaced by U+FFFD)
 * and a stop at the first NUL byte, which only binary or UTF-16 files contain.
 *
 * UTF-8 files are split into lines on their bytes and each line is checked natively
 * (`buffer.isUtf8`); other encodings are decoded with a fatal `TextDecoder` and re-encoded,
 * so every format reader sees the same UTF-8 line stream.
 */
import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { InvalidOptionError } from "../errors.js";

/** Bytes in a mebibyte, for limits and messages. */
const MiB = 1024 * 1024;

/** The longest JSONL line or CSV record read by default. */
export const DEFAULT_MAX_RECORD_BYTES = 16 * MiB;
/** The largest dataset file read by default. */
export const DEFAULT_MAX_FILE_BYTES = 1024 * MiB;
/**
 * A `.json` file is parsed whole, so it must fit in one JavaScript string; beyond this size
 * the parse would need gigabytes of heap. JSONL has no such limit (it is read line by line).
 */
export const MAX_JSON_FILE_BYTES = 256 * MiB;

/** How a file is read: its encoding and the size guards. */
export interface TextReadOptions {
  /** A WHATWG encoding label (`utf-8`, `windows-1252`, `utf-16le`, `shift_jis`, …). */
  encoding: string;
  maxRecordBytes: number;
  maxFileBytes: number;
  signal?: AbortSignal | undefined;
}

/**
 * A problem that stops reading the file (size, encoding, binary content). Loaders turn it
 * into a dataset issue at `line` (the message does not repeat the line); it never escapes
 * `Dataset.load`.
 */
export class TextReadError extends Error {
  constructor(
    message: string,
    /** The 1-based physical line, when the problem sits on one. */
    readonly line?: number,
  ) {
    super(message);
    this.name = "TextReadError";
  }
}

/** One physical line: its text (without the line end unless asked) and its 1-based number. */
export interface TextLine {
  text: string;
  line: number;
}

/** Checks the read options a caller passed and fills in the defaults. */
export function resolveTextOptions(options: {
  encoding?: string | undefined;
  maxRecordBytes?: number | undefined;
  maxFileBytes?: number | undefined;
  signal?: AbortSignal | undefined;
}): TextReadOptions {
  const limit = (value: number | undefined, name: string, fallback: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InvalidOptionError(
        name,
        `${name} must be a positive integer (bytes), got ${value}`,
      );
    }
    return value;
  };
  return {
    encoding: encodingOf(options.encoding),
    maxRecordBytes: limit(options.maxRecordBytes, "maxRecordBytes", DEFAULT_MAX_RECORD_BYTES),
    maxFileBytes: limit(options.maxFileBytes, "maxFileBytes", DEFAULT_MAX_FILE_BYTES),
    signal: options.signal,
  };
}

/** The canonical WHATWG name of `label` (`latin1` → `windows-1252`), or `InvalidOptionError`. */
function encodingOf(label: string | undefined): string {
  if (label === undefined) return "utf-8";
  if (typeof label !== "string") {
    throw new InvalidOptionError("encoding", `encoding must be a string, got ${typeof label}`);
  }
  try {
    return new TextDecoder(label).encoding;
  } catch {
    throw new InvalidOptionError(
      "encoding",
      `unknown encoding "${label}"; use a WHATWG label such as utf-8, windows-1252 (latin1), utf-16le or shift_jis`,
    );
  }
}

/** "12.5 MiB", "3 bytes". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toFixed(1))} ${units[unit]}`;
}

/** Rejects a file larger than the limit before a byte of it is read. */
export async function checkFileSize(path: string, limit: number, optionName: string) {
  const { size } = await stat(path);
  if (size > limit) {
    throw new TextReadError(
      `the file is ${formatBytes(size)}, over the ${formatBytes(limit)} limit (${optionName}); ` +
        "raise the limit if this file really is a dataset",
    );
  }
}

const ENCODING_HINT =
  'if the file is not UTF-8 (Excel saves "CSV" as Windows-1252), pass its encoding ' +
  "(encoding: 'windows-1252', or --encoding windows-1252 on the command line)";

/** The reason for a file that starts with a UTF-16 byte-order mark but is read as UTF-8. */
function utf16BomReason(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) {
    return "the file starts with a UTF-16LE byte-order mark; read it with encoding 'utf-16le'";
  }
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    return "the file starts with a UTF-16BE byte-order mark; read it with encoding 'utf-16be'";
  }
  return undefined;
}

/**
 * The offset of the first byte that does not start a valid UTF-8 sequence, and that
 * sequence's bytes. `bytes` is known to be invalid.
 */
function firstInvalidUtf8(bytes: Uint8Array): { offset: number; length: number } {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return { offset: i, length: 1 };
    }
    let code = b & (0x3f >> need);
    let j = 1;
    for (; j <= need; j++) {
      const c = bytes[i + j];
      if (c === undefined || (c & 0xc0) !== 0x80) return { offset: i, length: j };
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return { offset: i, length: j };
    }
    i += j;
  }
  return { offset: bytes.length, length: 0 };
}

const hex = (bytes: Uint8Array) =>
  [...bytes].map((b) => `0x${b.toString(16).toUpperCase().padStart(2, "0")}`).join(" ");

/** Code points in valid UTF-8 `bytes`, i.e. the 1-based column after them minus one. */
function columnAfter(bytes: Uint8Array): number {
  let count = 0;
  for (const b of bytes) if ((b & 0xc0) !== 0x80) count++;
  return count;
}

/** Decodes one line (or a whole `.json` file) of UTF-8, strictly. */
function decodeUtf8(bytes: Buffer, firstLine: number): string {
  if (isUtf8(bytes)) return bytes.toString("utf8");
  const { offset, length } = firstInvalidUtf8(bytes);
  let line = firstLine;
  let lineStart = 0;
  for (let i = bytes.indexOf(10); i >= 0 && i < offset; i = bytes.indexOf(10, i + 1)) {
    line++;
    lineStart = i + 1;
  }
  const column = columnAfter(bytes.subarray(lineStart, offset)) + 1;
  const bad = bytes.subarray(offset, offset + Math.max(1, length));
  throw new TextReadError(
    `not valid UTF-8 at column ${column} (byte${bad.length === 1 ? "" : "s"} ${hex(bad)}); ${ENCODING_HINT}`,
    line,
  );
}

function nulError(line: number, column: number): TextReadError {
  return new TextReadError(
    `a NUL byte at column ${column}: this looks like a binary file, or UTF-16 ` +
      "text read as UTF-8 (pass encoding 'utf-16le'); a text dataset never contains NUL",
    line,
  );
}

function tooLong(line: number, limit: number, what: string): TextReadError {
  // `line` is where the over-long line starts.
  return new TextReadError(
    `the ${what} is longer than ${formatBytes(limit)} (maxRecordBytes); reading stopped here. ` +
      "One record that long is almost certainly not a training example (a file with no line " +
      "breaks, or binary data); raise maxRecordBytes if it really is one",
    line,
  );
}

/** The raw bytes of the file, transcoded to UTF-8 when it is in another encoding. */
async function* utf8Chunks(path: string, options: TextReadOptions): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 });
  try {
    if (options.encoding === "utf-8") {
      for await (const chunk of stream) yield chunk as Buffer;
      return;
    }
    const decoder = new TextDecoder(options.encoding, { fatal: true });
    let bytesRead = 0;
    const fail = (): never => {
      throw new TextReadError(
        `not valid ${options.encoding} text within bytes ${bytesRead}–${stream.bytesRead} of the file; ` +
          "check the encoding option",
      );
    };
    for await (const chunk of stream) {
      let text: string;
      try {
        text = decoder.decode(chunk as Buffer, { stream: true });
      } catch {
        return fail();
      }
      bytesRead = stream.bytesRead;
      if (text.length > 0) yield Buffer.from(text, "utf8");
    }
    let rest: string;
    try {
      rest = decoder.decode();
    } catch {
      return fail();
    }
    if (rest.length > 0) yield Buffer.from(rest, "utf8");
  } finally {
    stream.destroy();
  }
}

/** Complete lines of text (each ending in `\n`, except a last line without one) and where they start. */
interface TextRegion {
  text: string;
  /** The 1-based number of the region's first line. */
  firstLine: number;
}

/**
 * The file's text as regions of whole lines, one or two per chunk read, without a leading
 * byte-order mark. A region is checked and decoded in one native call each (`isUtf8`,
 * `toString`), so reading costs about what `readline` does; only an invalid region is walked
 * line by line to name the line and column. Throws `TextReadError` at the first line that is
 * too long, not valid in the encoding, or holds a NUL byte; stops quietly when the signal
 * fires (callers check it).
 */
async function* readRegions(
  path: string,
  options: TextReadOptions,
  what: string,
): AsyncGenerator<TextRegion> {
  await checkFileSize(path, options.maxFileBytes, "maxFileBytes");
  const limit = options.maxRecordBytes;
  /** Bytes of a line that continues into the next chunk. */
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0; // lines completed so far
  let first = true;

  /** Decodes `bytes` (whole lines) starting at line `line + 1`, checking each line's length. */
  const region = (bytes: Buffer): TextRegion => {
    const firstLine = line + 1;
    if (bytes.length > limit) {
      let at = 0;
      for (let nl = bytes.indexOf(10); nl >= 0 || at < bytes.length; nl = bytes.indexOf(10, at)) {
        const end = nl < 0 ? bytes.length : nl;
        if (end - at > limit) throw tooLong(firstLine + countLines(bytes, at), limit, what);
        if (nl < 0) break;
        at = nl + 1;
      }
    }
    const text = decodeUtf8(bytes, firstLine);
    line += countLines(bytes, bytes.length);
    return { text, firstLine };
  };

  for await (let chunk of utf8Chunks(path, options)) {
    if (options.signal?.aborted) return;
    if (first) {
      first = false;
      if (options.encoding === "utf-8") {
        const bom = utf16BomReason(chunk);
        if (bom !== undefined) throw new TextReadError(bom, 1);
      }
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    const nul = chunk.indexOf(0);
    const usable = nul >= 0 ? chunk.subarray(0, nul) : chunk;
    let start = 0;
    const lastNewline = usable.lastIndexOf(10);
    if (lastNewline >= 0) {
      const firstNewline = usable.indexOf(10);
      if (pendingBytes + firstNewline > limit) throw tooLong(line + 1, limit, what);
      const whole = usable.subarray(0, lastNewline + 1);
      yield region(pendingBytes > 0 ? Buffer.concat([...pending, whole]) : whole);
      pending = [];
      pendingBytes = 0;
      start = lastNewline + 1;
    }
    const rest = usable.subarray(start);
    if (pendingBytes + rest.length > limit) throw tooLong(line + 1, limit, what);
    if (nul >= 0) {
      const before = Buffer.concat([...pending, rest]);
      throw nulError(line + 1, columnAfter(before) + 1);
    }
    if (rest.length > 0) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
  }
  if (pendingBytes > 0 && !options.signal?.aborted) yield region(Buffer.concat(pending));
}

/** Line breaks (`\n`) in `bytes` before `end`. */
function countLines(bytes: Buffer, end: number): number {
  let count = 0;
  for (let nl = bytes.indexOf(10); nl >= 0 && nl < end; nl = bytes.indexOf(10, nl + 1)) count++;
  return count;
}

/**
 * The lines of a text file, in batches, each without its `\n` / `\r\n` and without a
 * leading byte-order mark; the guards of {@link readRegions}.
 */
export async function* readLines(
  path: string,
  options: TextReadOptions,
  what = "line",
): AsyncGenerator<TextLine[]> {
  for await (const { text, firstLine } of readRegions(path, options, what)) {
    const parts = text.split("\n");
    if (parts[parts.length - 1] === "") parts.pop();
    const batch: TextLine[] = new Array(parts.length);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      const body = part.charCodeAt(part.length - 1) === 13 ? part.slice(0, -1) : part;
      batch[i] = { text: body, line: firstLine + i };
    }
    yield batch;
  }
}

/** The text of a file in pieces that end at line ends, line ends kept (for the CSV parser). */
export async function* readText(
  path: string,
  options: TextReadOptions,
  what = "line",
): AsyncGenerator<string> {
  for await (const { text } of readRegions(path, options, what)) yield text;
}

/**
 * The whole file as one string (for `.json`), with the same guards: at most
 * `min(maxFileBytes, MAX_JSON_FILE_BYTES)`, strict decoding, no NUL bytes.
 */
export async function readWholeText(path: string, options: TextReadOptions): Promise<string> {
  if (options.maxFileBytes > MAX_JSON_FILE_BYTES) {
    const { size } = await stat(path);
    if (size > MAX_JSON_FILE_BYTES) {
      throw new TextReadError(
        `the file is ${formatBytes(size)}; a .json dataset is parsed whole and may be at most ` +
          `${formatBytes(MAX_JSON_FILE_BYTES)}: convert it to JSONL (one record per line), which is read line by line`,
      );
    }
  }
  await checkFileSize(path, options.maxFileBytes, "maxFileBytes");
  let bytes = await readFile(path, options.signal ? { signal: options.signal } : {});
  if (options.encoding !== "utf-8") {
    try {
      bytes = Buffer.from(new TextDecoder(options.encoding, { fatal: true }).decode(bytes), "utf8");
    } catch {
      throw new TextReadError(
        `the file is not valid ${options.encoding} text; check the encoding option`,
      );
    }
  } else {
    const bom = utf16BomReason(bytes);
    if (bom !== undefined) throw new TextReadError(bom, 1);
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    const before = bytes.subarray(0, nul);
    let line = 1;
    let lineStart = 0;
    for (let i = before.indexOf(10); i >= 0; i = before.indexOf(10, i + 1)) {
      line++;
      lineStart = i + 1;
    }
    throw nulError(line, columnAfter(before.subarray(lineStart)) + 1);
  }
  return decodeUtf8(bytes, 1);
}
