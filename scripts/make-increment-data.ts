/**
 * Writes the increment datasets in the seed's style (`{"text_input": "41", "output": "42"}`):
 * digits, negative numbers, thousands separators and English number words up to the
 * millions. The training set and the held-out set never share an input.
 *
 *   npx tsx scripts/make-increment-data.ts            # writes examples/data/increment*.jsonl
 *   npx tsx scripts/make-increment-data.ts --check    # fails if the committed files differ
 *
 * Deterministic: the same seed always writes the same bytes.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { mulberry32 } from "../src/core/dataset/split.js";

const ONES = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
  "thirteen",
  "fourteen",
  "fifteen",
  "sixteen",
  "seventeen",
  "eighteen",
  "nineteen",
];
const TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

/** English words without "and" or hyphens, as in the seed: 201 → "two hundred one". */
export function toWords(n: number): string {
  if (n < 0) return `minus ${toWords(-n)}`;
  if (n < 20) return ONES[n] as string;
  if (n < 100)
    return [TENS[Math.floor(n / 10)], n % 10 ? ONES[n % 10] : ""].filter(Boolean).join(" ");
  if (n < 1000)
    return [`${ONES[Math.floor(n / 100)]} hundred`, n % 100 ? toWords(n % 100) : ""]
      .filter(Boolean)
      .join(" ");
  for (const [size, name] of [
    [1_000_000_000, "billion"],
    [1_000_000, "million"],
    [1_000, "thousand"],
  ] as const) {
    if (n >= size)
      return [`${toWords(Math.floor(n / size))} ${name}`, n % size ? toWords(n % size) : ""]
        .filter(Boolean)
        .join(" ");
  }
  throw new Error(`unreachable: ${n}`);
}

const withCommas = (n: number): string => n.toLocaleString("en-US");

type Style = "digits" | "negative" | "commas" | "words";
interface Row {
  text_input: string;
  output: string;
  style: Style;
}

function render(n: number, style: Style): Row {
  switch (style) {
    case "digits":
    case "negative":
      return { text_input: String(n), output: String(n + 1), style };
    case "commas":
      return { text_input: withCommas(n), output: withCommas(n + 1), style };
    case "words":
      return { text_input: toWords(n), output: toWords(n + 1), style };
  }
}

export function generate(seed: number): { train: Row[]; heldout: Row[] } {
  const random = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  // Numbers that end in 9s exercise the carry, the part a model most often gets wrong.
  const carry = (lo: number, hi: number) => {
    const n = int(lo, hi);
    const nines = int(1, Math.max(1, String(n).length - 1));
    return Math.floor(n / 10 ** nines) * 10 ** nines + (10 ** nines - 1);
  };
  const pick: Record<Style, () => number> = {
    digits: () =>
      random() < 0.25 ? carry(10, 99_999) : random() < 0.5 ? int(0, 999) : int(1_000, 999_999),
    negative: () => -(random() < 0.25 ? carry(10, 9_999) + 1 : int(2, 9_999)),
    commas: () => (random() < 0.25 ? carry(1_000, 99_999_999) : int(1_000, 99_999_999)),
    words: () =>
      random() < 0.25 ? carry(10, 9_999_999) : random() < 0.5 ? int(0, 999) : int(1_000, 9_999_999),
  };
  const quota: Record<Style, [number, number]> = {
    digits: [110, 35],
    negative: [70, 25],
    commas: [80, 25],
    words: [140, 35],
  };
  const seen = new Set<string>();
  const take = (style: Style, count: number): Row[] => {
    const rows: Row[] = [];
    while (rows.length < count) {
      const row = render(pick[style](), style);
      if (seen.has(row.text_input)) continue;
      seen.add(row.text_input);
      rows.push(row);
    }
    return rows;
  };
  const train: Row[] = [];
  const heldout: Row[] = [];
  for (const style of Object.keys(quota) as Style[]) {
    const [trainCount, heldoutCount] = quota[style];
    train.push(...take(style, trainCount));
    heldout.push(...take(style, heldoutCount));
  }
  const shuffle = (rows: Row[]) => {
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [rows[i], rows[j]] = [rows[j] as Row, rows[i] as Row];
    }
    return rows;
  };
  return { train: shuffle(train), heldout: shuffle(heldout) };
}

export const toJsonl = (rows: Row[]) =>
  `${rows.map(({ text_input, output }) => JSON.stringify({ text_input, output })).join("\n")}\n`;

export const INCREMENT_SEED = 20250516;

const isMain = process.argv[1]?.endsWith("make-increment-data.ts");
if (isMain) {
  const { train, heldout } = generate(INCREMENT_SEED);
  const files: [string, string][] = [
    ["examples/data/increment.jsonl", toJsonl(train)],
    ["examples/data/increment-heldout.jsonl", toJsonl(heldout)],
  ];
  if (process.argv.includes("--check")) {
    const stale = files
      .filter(([path, text]) => readFileSync(path, "utf8") !== text)
      .map(([p]) => p);
    if (stale.length) {
      console.error(
        `out of date: ${stale.join(", ")} (run npx tsx scripts/make-increment-data.ts)`,
      );
      process.exit(1);
    }
  } else {
    for (const [path, text] of files) writeFileSync(path, text);
    console.log(`wrote ${train.length} training and ${heldout.length} held-out examples`);
  }
}
