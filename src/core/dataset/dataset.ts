import type { DatasetIssue, DatasetPosition } from "../errors.js";
import {
  type DatasetOptions,
  type DatasetShape,
  DEFAULT_MAX_ISSUES,
  type Example,
  type LoadOptions,
} from "./example.js";
import { examplesToJSONL, writeAtomically } from "./export.js";
import { type GeminiExample, toGeminiExamples } from "./gemini-wire.js";
import { type PositionTable, positionAt, resolveMaxIssues } from "./issues.js";
import { loadFile, normalizeArray } from "./load.js";
import type { NormalizedRecords, RecordFields } from "./normalize.js";
import { type LimitProfile, type ProfileName, resolveProfile } from "./profiles.js";
import { type SplitOptions, splitIndexes } from "./split.js";
import { computeStats, type DatasetStats } from "./stats.js";
import { assertValid, runProfile, type ValidationResult } from "./validate.js";

/** Options of `Dataset.from`. */
export interface FromOptions extends DatasetOptions {
  /** Names the data in error messages. @default "array" */
  source?: string;
}

/** Options of `validate` and `check`. */
export interface ValidateOptions {
  /** Stop listing example problems after this many. @default 100 */
  maxIssues?: number;
}

/**
 * A validated set of input → output examples, ready for any backend. Loading checks
 * every record and throws `InvalidDatasetError` listing every problem (up to `maxIssues`)
 * with its position — nothing is returned half-way. Backend limits are checked separately
 * with `check(profile)`.
 *
 * @example
 * ```ts
 * const dataset = await Dataset.load("examples/data/increment-seed.jsonl");
 * const warnings = dataset.check("gemini"); // throws InvalidDatasetError: at least 20 needed
 * const { train, validation } = dataset.split({ validationFraction: 0.1, seed: 42 });
 * ```
 */
export class Dataset implements Iterable<Example> {
  /** The normalised examples, in source order. */
  readonly examples: readonly Example[];
  /** The file path, or `"array"` (or `FromOptions.source`) for in-memory data. */
  readonly source: string;
  /** The record shape detected (or `"columns"` for an explicit mapping). */
  readonly shape: DatasetShape | undefined;
  readonly #positions: PositionTable;
  readonly #fields: readonly RecordFields[];

  private constructor(
    examples: readonly Example[],
    positions: PositionTable,
    source: string,
    shape: DatasetShape | undefined,
    fields: readonly RecordFields[],
  ) {
    this.examples = examples;
    this.#positions = positions;
    this.#fields = fields;
    this.source = source;
    this.shape = shape;
  }

  static #fromNormalized(records: NormalizedRecords, source: string): Dataset {
    return new Dataset(
      records.examples,
      { kind: records.kind, values: records.positions },
      source,
      records.shape,
      records.fields,
    );
  }

  /**
   * Builds a dataset from in-memory records of any recognised shape (Gemini, Alpaca,
   * prompt/completion, single-turn chat, or `options.columns`). Problems are positioned
   * by 0-based `index`.
   *
   * @example
   * ```ts
   * const dataset = Dataset.from([{ input: "1", output: "2" }, { input: "3", output: "4" }]);
   * ```
   * @throws InvalidDatasetError listing every bad record; InvalidOptionError for bad options.
   */
  static from(records: readonly unknown[], options: FromOptions = {}): Dataset {
    const source = options.source ?? "array";
    return Dataset.#fromNormalized(normalizeArray(records, options, source), source);
  }

  /**
   * Loads `.json` (an array, or an object with an array under `examples`, `data`,
   * `records` or `rows`), `.jsonl`/`.ndjson` (streamed line by line; blank lines skipped)
   * or `.csv` (RFC 4180 with a header row; BOM, CRLF and quoted newlines handled).
   * Positions: JSONL `line` (1-based), CSV `row` (1-based, the header is row 1), JSON `index` (0-based).
   *
   * @example
   * ```ts
   * const faq = await Dataset.load("faq.csv", { columns: { input: "question", output: "answer" } });
   * ```
   * @throws InvalidDatasetError listing every problem; InvalidOptionError for an unreadable
   * path or unknown extension; AbortedError when `options.signal` fires.
   */
  static async load(path: string, options: LoadOptions = {}): Promise<Dataset> {
    return Dataset.#fromNormalized(await loadFile(path, options), path);
  }

  /** Number of examples. */
  get size(): number {
    return this.examples.length;
  }

  [Symbol.iterator](): Iterator<Example> {
    return this.examples[Symbol.iterator]();
  }

  /** Where example `index` came from: its JSONL line, CSV row or array index. */
  positionOf(index: number): DatasetPosition {
    return positionAt(this.#positions, index);
  }

  /**
   * A scalar (string, number or boolean) top-level field of example `index`'s source record,
   * such as a `kind` column that is neither input nor output; `undefined` when the record has
   * no such field. `evaluate` groups results by it (`groupBy`).
   *
   * @example
   * ```ts
   * const data = Dataset.from([{ input: "9", output: "10", kind: "carry" }]);
   * data.fieldOf(0, "kind"); // "carry"
   * ```
   */
  fieldOf(index: number, name: string): string | number | boolean | undefined {
    const fields = this.#fields[index];
    return fields !== undefined && Object.hasOwn(fields, name) ? fields[name] : undefined;
  }

  /**
   * Applies a backend's limits and returns everything found; never throws for bad data.
   *
   * @example
   * ```ts
   * const result = dataset.validate("gemini");
   * if (!result.valid) console.error(result.errors.map(formatDatasetIssue).join("\n"));
   * ```
   */
  validate(
    profile: LimitProfile | ProfileName = "gemini",
    options: ValidateOptions = {},
  ): ValidationResult {
    const maxIssues = resolveMaxIssues(options.maxIssues, DEFAULT_MAX_ISSUES);
    return runProfile(this.examples, this.#positions, resolveProfile(profile), maxIssues);
  }

  /**
   * Like `validate`, but throws `InvalidDatasetError` (with every issue) when any error
   * is found. Returns the warnings.
   */
  check(
    profile: LimitProfile | ProfileName = "gemini",
    options: ValidateOptions = {},
  ): readonly DatasetIssue[] {
    const result = this.validate(profile, options);
    assertValid(result, this.source);
    return result.warnings;
  }

  /** Count, input/output length percentiles (code points) and duplicates. */
  stats(): DatasetStats {
    return computeStats(this.examples);
  }

  /**
   * A seeded train/validation split. The same seed on the same dataset always gives the
   * same split; each side keeps the original order and the examples' source positions.
   *
   * @example
   * ```ts
   * const { train, validation } = dataset.split({ validationFraction: 0.2, seed: 7 });
   * ```
   * @throws InvalidOptionError for a bad fraction/size or a dataset of fewer than 2 examples.
   */
  split(options: SplitOptions): { train: Dataset; validation: Dataset } {
    const { train, validation } = splitIndexes(this.size, options);
    return { train: this.#subset(train), validation: this.#subset(validation) };
  }

  #subset(indexes: readonly number[]): Dataset {
    const examples: Example[] = new Array(indexes.length);
    const values: number[] = new Array(indexes.length);
    const fields: RecordFields[] = new Array(indexes.length);
    for (let i = 0; i < indexes.length; i++) {
      const index = indexes[i] as number;
      examples[i] = this.examples[index] as Example;
      values[i] = this.positionOf(index).value;
      fields[i] = this.#fields[index] ?? {};
    }
    return new Dataset(
      examples,
      { kind: this.#positions.kind, values },
      this.source,
      this.shape,
      fields,
    );
  }

  /** The examples as JSONL text: `{"instruction"?, "input", "output"}` per line. Loads back as is. */
  toJSONL(): string {
    return examplesToJSONL(this.examples);
  }

  /** Writes `toJSONL()` to `path` atomically (a temporary file, then a rename). */
  async writeJSONL(path: string): Promise<void> {
    await writeAtomically(path, this.toJSONL());
  }

  /** The Gemini wire shape `{ textInput, output }[]`, instructions folded (see `foldInstruction`). */
  toGeminiExamples(): GeminiExample[] {
    return toGeminiExamples(this.examples);
  }
}
