/**
 * A deterministic corpus of damaged dataset files for `Dataset.load`: valid JSONL, JSON and
 * CSV documents of every recognised shape, then mutated the ways real files go wrong (byte
 * damage, truncation, stray quotes, invalid UTF-8, other encodings, binary data, NUL bytes,
 * over-long lines, deep nesting, lone surrogates, old-Mac line ends, odd keys) and loaded with
 * varied options. The same seed always gives the same files.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LoadOptions } from "tunekit";

/** One file of the corpus and how it is loaded. */
export interface DatasetCase {
  file: string;
  /** What was done to it, for the report. */
  mutation: string;
  options: Omit<LoadOptions, "signal">;
}

/** SplitMix32-style generator: small, seedable, the same on every platform. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)] as T;
const int = (random: Random, below: number) => Math.floor(random() * below);

const WORDS = [
  "tune",
  "café",
  "naïve",
  "数据",
  "😀",
  "a,b",
  'say "hi"',
  "line\nbreak",
  "tab\there",
];

function text(random: Random): string {
  const n = 1 + int(random, 6);
  return Array.from({ length: n }, () => pick(random, WORDS)).join(" ");
}

/** A record of one of the shapes tunekit recognises (sometimes a broken one). */
function record(random: Random, shape: number): unknown {
  switch (shape) {
    case 0:
      return { text_input: text(random), output: text(random) };
    case 1:
      return { instruction: text(random), input: text(random), output: text(random) };
    case 2:
      return { prompt: text(random), completion: text(random) };
    case 3:
      return {
        messages: [
          { role: "system", content: text(random) },
          { role: "user", content: text(random) },
          { role: "assistant", content: text(random) },
        ],
      };
    default:
      return pick<unknown>(random, [
        { text_input: "", output: text(random) },
        { prompt: 1, completion: null },
        ["not", "an", "object"],
        42,
        null,
        // Own keys named like Object.prototype members (an object literal would set the prototype).
        JSON.parse(
          `{"__proto__": ${JSON.stringify(text(random))}, "constructor": "c", "output": "o"}`,
        ),
        { textInput: text(random), output: { nested: true } },
      ]);
  }
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** A valid document: JSONL, JSON or CSV, 1–40 records. */
function document(random: Random, type: "jsonl" | "json" | "csv"): string {
  const n = 1 + int(random, 40);
  // Mostly one recognised shape; now and then a bad record among them.
  const shape = int(random, 4);
  const records = Array.from({ length: n }, () => record(random, random() < 0.98 ? shape : 4));
  if (type === "jsonl") return `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
  if (type === "json") {
    return JSON.stringify(
      random() < 0.5 ? records : { examples: records },
      null,
      random() < 0.5 ? 2 : 0,
    );
  }
  const header = pick(random, [
    ["text_input", "output"],
    ["prompt", "completion"],
    ["instruction", "input", "output"],
    ["messages"],
    ["question", "answer"],
  ]);
  const rows = Array.from({ length: n }, () =>
    header
      .map((column) =>
        column === "messages"
          ? csvField(JSON.stringify((record(random, 3) as { messages: unknown }).messages))
          : csvField(text(random)),
      )
      .join(","),
  );
  const end = random() < 0.5 ? "\r\n" : "\n";
  return `${[header.join(","), ...rows].join(end)}${end}`;
}

/** The mutations, each a function of the valid bytes. */
const MUTATIONS: Record<string, (bytes: Buffer, random: Random) => Buffer> = {
  none: (b) => b,
  "flip bytes": (b, random) => {
    const out = Buffer.from(b);
    for (let i = 0; i <= int(random, 8) && out.length > 0; i++)
      out[int(random, out.length)] = int(random, 256);
    return out;
  },
  truncate: (b, random) => b.subarray(0, int(random, b.length + 1)),
  "insert invalid UTF-8": (b, random) =>
    splice(b, random, Buffer.from([pick(random, [0xff, 0xc3, 0x80, 0xe2, 0xed, 0xf5])])),
  "insert NUL": (b, random) => splice(b, random, Buffer.from([0])),
  "insert quote": (b, random) =>
    splice(b, random, Buffer.from(pick(random, ['"', "'", '""', '"x"y']))),
  "insert punctuation": (b, random) =>
    splice(b, random, Buffer.from(pick(random, [",", "{", "}", "[", "]", ":", "\\", "\n"]))),
  "delete a line": (b, random) => {
    const lines = b.toString("latin1").split("\n");
    lines.splice(int(random, lines.length), 1);
    return Buffer.from(lines.join("\n"), "latin1");
  },
  "duplicate a line": (b, random) => {
    const lines = b.toString("latin1").split("\n");
    const i = int(random, lines.length);
    lines.splice(i, 0, lines[i] ?? "");
    return Buffer.from(lines.join("\n"), "latin1");
  },
  "UTF-8 BOM": (b) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]),
  "UTF-16LE with BOM": (b) =>
    Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(b.toString("utf8"), "utf16le")]),
  "UTF-16BE with BOM": (b) => {
    const le = Buffer.from(b.toString("utf8"), "utf16le");
    return Buffer.concat([Buffer.from([0xfe, 0xff]), le.swap16()]);
  },
  "UTF-16LE without BOM": (b) => Buffer.from(b.toString("utf8"), "utf16le"),
  "Windows-1252": (b) =>
    // Characters Latin-1 cannot hold become "?", as a legacy export would write them.
    Buffer.from(
      [...b.toString("utf8")].map((c) => ((c.codePointAt(0) ?? 0) > 0xff ? "?" : c)).join(""),
      "latin1",
    ),
  "old-Mac line ends": (b) => Buffer.from(b.toString("utf8").replaceAll("\n", "\r")),
  "random binary": (_, random) =>
    Buffer.from(Array.from({ length: int(random, 4096) }, () => int(random, 256))),
  "over-long line": (b, random) =>
    splice(b, random, Buffer.alloc(100_000 + int(random, 100_000), "x")),
  "deep nesting": (_, random) => {
    const depth = 1000 + int(random, 200_000);
    return Buffer.from(`${"[".repeat(depth)}${"]".repeat(depth)}\n`);
  },
  "lone surrogates": (b) =>
    Buffer.from(
      b.toString("utf8").replace(/"(output|completion)":\s*"/g, '"$1":"\\ud800\\udc00\\ud800'),
    ),
  "huge numbers": (b) =>
    Buffer.from(b.toString("utf8").replace(/"(input|prompt)":\s*"[^"]*"/g, '"$1":1e999999')),
  empty: () => Buffer.alloc(0),
  "whitespace only": () => Buffer.from(" \n\t\r\n  \n"),
  "header only": (b) => Buffer.from(b.toString("latin1").split("\n")[0] ?? ""),
};

function splice(bytes: Buffer, random: Random, insert: Buffer): Buffer {
  const at = int(random, bytes.length + 1);
  return Buffer.concat([bytes.subarray(0, at), insert, bytes.subarray(at)]);
}

/** Load options, some deliberately at odds with the file. */
function options(random: Random): Omit<LoadOptions, "signal"> {
  if (random() < 0.6) return {};
  return pick(random, [
    { maxRecordBytes: 64 * 1024 },
    { encoding: "windows-1252" },
    { encoding: "utf-16le" },
    { encoding: "shift_jis" },
    { columns: { input: "question", output: "answer" } },
    { columns: { input: "__proto__", output: "constructor" } },
    { maxIssues: 1 },
    { maxFileBytes: 512 },
  ]);
}

/** Writes `count` files into `dir`; returns how to load each. */
export async function writeDatasetCorpus(
  dir: string,
  count: number,
  seed: number,
): Promise<DatasetCase[]> {
  const random = rng(seed);
  const names = Object.keys(MUTATIONS);
  const cases: DatasetCase[] = [];
  for (let i = 0; i < count; i++) {
    const type = pick(random, ["jsonl", "json", "csv"] as const);
    // Every mutation is used; "none" and byte damage more often than exotic ones.
    const mutation =
      i < names.length
        ? (names[i] as string)
        : pick(random, [...names, "none", "flip bytes", "truncate"]);
    const bytes = (MUTATIONS[mutation] as (b: Buffer, r: Random) => Buffer)(
      Buffer.from(document(random, type)),
      random,
    );
    const file = join(
      dir,
      `case-${String(i).padStart(4, "0")}.${type === "jsonl" && random() < 0.2 ? "ndjson" : type}`,
    );
    await writeFile(file, bytes);
    cases.push({ file, mutation, options: options(random) });
  }
  return cases;
}
