/**
 * Writes the increment datasets in the seed's style (`{"text_input": "41", "output": "42"}`),
 * each row tagged with its `kind`: digits, negative numbers, thousands separators and English
 * number words up to the millions, each plain and carrying (`digits-carry`: 199 → 200,
 * `negative-carry`: -100 → -99, `commas-carry`: 9,999 → 10,000, `words-carry`: "nine hundred
 * ninety nine" → "one thousand"), in equal numbers, with carries at every digit position.
 * The training set and the held-out set never share an input.
 *
 *   npx tsx scripts/make-increment-data.ts            # writes examples/data/increment*.jsonl
 *   npx tsx scripts/make-increment-data.ts --check    # fails if the committed files differ
 *   npx tsx scripts/make-increment-data.ts --seed 7 --heldout h7.jsonl
 *       # another held-out set (seed 7) sharing no input with the committed training set
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

/** How a number is written. */
export type Style = "digits" | "negative" | "commas" | "words";
/** A style, and whether the increment carries (or, for negatives, borrows). */
export type Kind = Style | `${Style}-carry`;
export const STYLES: readonly Style[] = ["digits", "negative", "commas", "words"];
export const KINDS: readonly Kind[] = STYLES.flatMap((s) => [s, `${s}-carry` as const]);

/** One row: the task's fields plus `kind`, the grouping field per-kind accuracy is read from. */
export interface Row {
  text_input: string;
  output: string;
  kind: Kind;
}

function render(n: number, kind: Kind): Row {
  const style = kind.replace("-carry", "") as Style;
  const write = style === "commas" ? withCommas : style === "words" ? toWords : String;
  return { text_input: write(n), output: write(n + 1), kind };
}

/** Carries every training set holds: the all-nines numbers of each kind, and -1, -10, -100 …. */
const LANDMARKS: Partial<Record<Kind, number[]>> = {
  "digits-carry": [9, 99, 999, 9_999, 99_999, 999_999],
  "negative-carry": [-1, -10, -100, -1_000],
  "commas-carry": [9_999, 99_999, 999_999, 9_999_999, 99_999_999],
  "words-carry": [9, 19, 99, 999, 9_999, 99_999, 999_999, 9_999_999],
};

/** Rows per kind in the training set and in the held-out set. */
export const QUOTA = { train: 50, heldout: 15 } as const;

/**
 * The rows of `seed`: every kind in equal numbers, the held-out set never sharing an input
 * with the training set (nor with `exclude`, e.g. another seed's training set).
 */
export function generate(
  seed: number,
  exclude: Iterable<string> = [],
): { train: Row[]; heldout: Row[] } {
  const random = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  /** A number in [lo, hi] ending in `k` nines, k uniform over every position it can take. */
  const nines = (lo: number, hi: number) => {
    for (;;) {
      const k = int(1, String(hi).length);
      const n = Math.floor(int(0, hi) / 10 ** k) * 10 ** k + (10 ** k - 1);
      if (n >= lo && n <= hi) return n;
    }
  };
  /** A number in [lo, hi] ending in `k` zeros (its negative borrows: -200 + 1 = -199). */
  const zeros = (lo: number, hi: number) => {
    for (;;) {
      const k = int(1, String(hi).length - 1);
      const n = Math.floor(int(lo, hi) / 10 ** k) * 10 ** k;
      if (n >= lo && n <= hi) return n;
    }
  };
  /** Small numbers as often as large ones: the number of digits is uniform first. */
  const spread = (lo: number, hi: number) => {
    const digits = int(String(lo).length, String(hi).length);
    const from = digits === 1 ? 0 : 10 ** (digits - 1);
    return int(Math.max(lo, from), Math.min(hi, 10 ** digits - 1));
  };
  const notCarry = (pick: () => number, carries: (n: number) => boolean) => () => {
    for (;;) {
      const n = pick();
      if (!carries(n)) return n;
    }
  };
  const endsIn9 = (n: number) => n % 10 === 9;
  const pick: Record<Kind, () => number> = {
    digits: notCarry(() => spread(0, 999_999), endsIn9),
    "digits-carry": () => nines(0, 999_999),
    negative: notCarry(
      () => -spread(2, 9_999),
      (n) => n % 10 === 0,
    ),
    // -1 → 0 and -10, -200, -1,000 … → -9, -199, -999: the borrow of a negative increment.
    "negative-carry": () => -zeros(10, 9_999),
    commas: notCarry(() => spread(1_000, 99_999_999), endsIn9),
    "commas-carry": () => nines(1_000, 99_999_999),
    words: notCarry(() => spread(0, 9_999_999), endsIn9),
    "words-carry": () => nines(0, 9_999_999),
  };
  const seen = new Set<string>(exclude);
  const take = (kind: Kind, count: number): Row[] => {
    const rows: Row[] = [];
    while (rows.length < count) {
      const row = render(pick[kind](), kind);
      if (seen.has(row.text_input)) continue;
      seen.add(row.text_input);
      rows.push(row);
    }
    return rows;
  };
  const train: Row[] = [];
  const heldout: Row[] = [];
  for (const kind of KINDS) {
    // The carries that exist once each (9 → 10, -1 → 0, "nine" → "ten", 9,999 → 10,000 …)
    // are taught: they are in every training set, so a held-out set of any seed may ask them.
    const landmarks = (LANDMARKS[kind] ?? []).map((n) => render(n, kind));
    for (const row of landmarks) seen.add(row.text_input);
    // (With `exclude`, landmarks may repeat an excluded input: only the held-out set is wanted then.)
    train.push(...landmarks, ...take(kind, QUOTA.train - landmarks.length));
    heldout.push(...take(kind, QUOTA.heldout));
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
  `${rows.map(({ text_input, output, kind }) => JSON.stringify({ text_input, output, kind })).join("\n")}\n`;

export const INCREMENT_SEED = 20250516;

const isMain = process.argv[1]?.endsWith("make-increment-data.ts");
const flag = (name: string) => {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
};
if (isMain && flag("--heldout") !== undefined) {
  // Another held-out set of the same task, for checking a tuned model on numbers it never saw.
  const seed = Number(flag("--seed") ?? "1");
  const trained = generate(INCREMENT_SEED).train.map((r) => r.text_input);
  const { heldout } = generate(seed, trained);
  writeFileSync(flag("--heldout") as string, toJsonl(heldout));
  console.log(`wrote ${heldout.length} held-out examples (seed ${seed}) to ${flag("--heldout")}`);
} else if (isMain) {
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
