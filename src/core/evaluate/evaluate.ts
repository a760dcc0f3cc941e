/**
 * `evaluate(model, dataset, options)`: scores any `TunedModel` (local, Gemini, Vertex) the same
 * way — generation metrics for every backend, response loss and perplexity where the model can
 * compute token probabilities (local models).
 */
import { Dataset } from "../dataset/dataset.js";
import type { Example } from "../dataset/example.js";
import { type DatasetPosition, InvalidOptionError, throwIfAborted } from "../errors.js";
import type { GenerateOptions, TunedModel } from "../types.js";
import { GENERATION_METRICS, type GenerationMetric, METRIC_FUNCTIONS } from "./metrics.js";

/** Σ cross-entropy over one example's response tokens (natural log), and how many tokens. */
export interface ResponseLoss {
  /** Summed negative log-likelihood of the response tokens, in nats. */
  sum: number;
  /** Response tokens scored (the end-of-sequence token included). */
  tokens: number;
}

/** Options of {@link ResponseLossModel.responseLosses}. */
export interface ResponseLossOptions {
  signal?: AbortSignal;
  /** Called after each example is scored. */
  onExample?: (index: number) => void;
}

/**
 * A model that can score how likely it finds each expected response, prompted exactly as in
 * training (local models: `LocalTunedModel`, `LocalBaseModel`). `evaluate` reports loss and
 * perplexity for models that have it.
 */
export interface ResponseLossModel {
  responseLosses(
    examples: readonly Example[],
    options?: ResponseLossOptions,
  ): Promise<ResponseLoss[]>;
}

/** True when `model` can compute response losses (see {@link ResponseLossModel}). */
export function hasResponseLoss(model: unknown): model is ResponseLossModel {
  return (
    typeof model === "object" &&
    model !== null &&
    typeof (model as Partial<ResponseLossModel>).responseLosses === "function"
  );
}

/** What a user-supplied scorer receives. */
export interface ScorerInput {
  /** The model's answer. */
  output: string;
  /** The dataset's expected output. */
  expected: string;
  example: Example;
  /** 0-based index of the example in the evaluated data. */
  index: number;
}

/** A user metric: a number in [0, 1] (or a boolean: true = 1) for one example. */
export type Scorer = (input: ScorerInput) => number | boolean | Promise<number | boolean>;

/** Progress of an evaluation, after each example of each phase. */
export interface EvaluationProgress {
  phase: "generate" | "loss";
  completed: number;
  total: number;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Built-in generation metrics to compute. @default all three */
  metrics?: readonly GenerationMetric[];
  /** Extra metrics by name, each scoring one generated answer in [0, 1]. */
  scorers?: Readonly<Record<string, Scorer>>;
  /** Generate answers and score them. `false` computes loss only (local models). @default true */
  generate?: boolean;
  /** Compute response loss and perplexity when the model supports it. @default true */
  loss?: boolean;
  /**
   * Slice the results by a field of each source record (a `Dataset` field such as `kind`, read
   * with `dataset.fieldOf`), or by a function of the example. Examples without one are in the
   * `"(none)"` slice.
   */
  groupBy?: string | ((example: Example, index: number) => string | undefined);
  /**
   * Sampling for the answers, passed to `model.generate`. @default `{ temperature: 0,
   * maxOutputTokens: 256 }` (greedy, so a run is repeatable).
   */
  generation?: Omit<GenerateOptions, "signal">;
  /**
   * Most requests in flight at once. @default 4 for remote models; 1 for models that compute
   * response losses (local models run one generation at a time anyway)
   */
  concurrency?: number;
  /** Called after each example of each phase. */
  onProgress?: (progress: EvaluationProgress) => void;
  /** Stops the evaluation; it then rejects with `AbortedError`. */
  signal?: AbortSignal;
}

/** Aggregate numbers of a set of examples; absent when not computed. */
export interface EvaluationMetrics {
  /** Fraction of answers equal to the expected output (whitespace-trimmed). */
  exactMatch?: number;
  /** Fraction equal after `normalizeAnswer`. */
  normalizedMatch?: number;
  /** Fraction whose normalised answer contains the normalised expected output. */
  contains?: number;
  /** Mean cross-entropy per response token, in nats (token-weighted over examples). */
  loss?: number;
  /** `exp(loss)`. */
  perplexity?: number;
  /** User scorers' means, by name. */
  [scorer: string]: number | undefined;
}

/** One evaluated example. */
export interface ExampleResult {
  /** 0-based index in the evaluated data. */
  index: number;
  /** Where the example came from (JSONL line, CSV row, index) when the data was a `Dataset`. */
  position?: DatasetPosition;
  input: string;
  expected: string;
  /** The model's answer (absent when `generate: false`). */
  output?: string;
  /** Each metric's score for this example, in [0, 1]. */
  scores: Record<string, number>;
  /** Mean cross-entropy per response token of this example (nats). */
  loss?: number;
  /** Response tokens scored for the loss. */
  tokens?: number;
  /** The slice (`groupBy`) this example belongs to. */
  group?: string;
}

/** A slice of the results (`groupBy`). */
export interface EvaluationSlice {
  examples: number;
  metrics: EvaluationMetrics;
}

/** What {@link evaluate} returns. */
export interface EvaluationReport {
  /** The model's name (`tunedModels/…`, a run directory, a base model). */
  model: string;
  examples: number;
  metrics: EvaluationMetrics;
  /** Per-slice metrics, in order of first appearance (present with `groupBy`). */
  slices?: Record<string, EvaluationSlice>;
  results: ExampleResult[];
  durationMs: number;
}

const NO_GROUP = "(none)";
const DEFAULT_GENERATION: Omit<GenerateOptions, "signal"> = {
  temperature: 0,
  maxOutputTokens: 256,
};

/**
 * Scores `model` on `data`: it generates an answer to every input and compares it with the
 * expected output (exact match, normalised match, contains, and your own scorers); for local
 * models it also computes the loss and perplexity of the expected responses, prompted exactly as
 * in training. Results come per example, in total, and per slice with `groupBy`.
 *
 * @example
 * ```ts
 * import { Dataset, evaluate } from "tunekit";
 * import { LocalTuner } from "tunekit/local";
 *
 * const model = await new LocalTuner().getModel("runs/increment");
 * const heldOut = await Dataset.load("examples/data/increment-heldout.jsonl");
 * const report = await evaluate(model, heldOut, {
 *   scorers: { short: ({ output }) => output.length <= 12 },
 *   onProgress: ({ phase, completed, total }) => console.log(phase, completed, total),
 * });
 * console.log(report.metrics.exactMatch, report.metrics.perplexity);
 * ```
 * @throws InvalidOptionError for bad options (named by `path`) or empty data.
 * @throws AbortedError when `options.signal` fires.
 */
export async function evaluate(
  model: TunedModel,
  data: Dataset | readonly Example[],
  options: EvaluateOptions = {},
): Promise<EvaluationReport> {
  const started = performance.now();
  const settings = checkOptions(model, data, options);
  const examples = data instanceof Dataset ? data.examples : data;
  const { signal } = options;
  throwIfAborted(signal);

  const results: ExampleResult[] = examples.map((example, index) => {
    const result: ExampleResult = {
      index,
      input: example.input,
      expected: example.output,
      scores: {},
    };
    if (data instanceof Dataset) result.position = data.positionOf(index);
    const group = groupOf(options.groupBy, data, example, index);
    if (group !== undefined) result.group = group;
    return result;
  });

  if (settings.generate) {
    const generation = { ...DEFAULT_GENERATION, ...options.generation };
    let completed = 0;
    await forEachLimited(examples.length, settings.concurrency, signal, async (index) => {
      const example = examples[index] as Example;
      const result = results[index] as ExampleResult;
      const output = await model.generate(
        example.input,
        signal ? { ...generation, signal } : generation,
      );
      result.output = output;
      for (const name of settings.metrics) {
        result.scores[name] = METRIC_FUNCTIONS[name](output, example.output);
      }
      for (const [name, scorer] of Object.entries(options.scorers ?? {})) {
        result.scores[name] = checkScore(
          name,
          await scorer({ output, expected: example.output, example, index }),
          index,
        );
      }
      options.onProgress?.({ phase: "generate", completed: ++completed, total: examples.length });
    });
  }

  if (settings.loss && hasResponseLoss(model)) {
    throwIfAborted(signal);
    let completed = 0;
    const losses = await model.responseLosses(examples, {
      ...(signal ? { signal } : {}),
      onExample: () =>
        options.onProgress?.({ phase: "loss", completed: ++completed, total: examples.length }),
    });
    losses.forEach((loss, index) => {
      const result = results[index] as ExampleResult;
      result.loss = loss.sum / Math.max(1, loss.tokens);
      result.tokens = loss.tokens;
    });
  }

  const report: EvaluationReport = {
    model: model.name,
    examples: examples.length,
    metrics: aggregate(results),
    results,
    durationMs: performance.now() - started,
  };
  if (options.groupBy !== undefined) {
    const groups = new Map<string, ExampleResult[]>();
    for (const result of results) {
      const key = result.group ?? NO_GROUP;
      const members = groups.get(key);
      if (members) members.push(result);
      else groups.set(key, [result]);
    }
    report.slices = Object.fromEntries(
      [...groups].map(([key, members]) => [
        key,
        { examples: members.length, metrics: aggregate(members) },
      ]),
    );
  }
  return report;
}

/** Means of every score, and token-weighted loss with its perplexity. */
function aggregate(results: readonly ExampleResult[]): EvaluationMetrics {
  const metrics: EvaluationMetrics = {};
  const sums = new Map<string, number>();
  for (const result of results) {
    for (const [name, score] of Object.entries(result.scores)) {
      sums.set(name, (sums.get(name) ?? 0) + score);
    }
  }
  for (const [name, sum] of sums) metrics[name] = sum / results.length;
  let nats = 0;
  let tokens = 0;
  for (const result of results) {
    if (result.loss === undefined || result.tokens === undefined) continue;
    nats += result.loss * result.tokens;
    tokens += result.tokens;
  }
  if (tokens > 0) {
    metrics.loss = nats / tokens;
    metrics.perplexity = Math.exp(metrics.loss);
  }
  return metrics;
}

function groupOf(
  groupBy: EvaluateOptions["groupBy"],
  data: Dataset | readonly Example[],
  example: Example,
  index: number,
): string | undefined {
  if (groupBy === undefined) return undefined;
  if (typeof groupBy === "function") return groupBy(example, index) ?? NO_GROUP;
  const value = (data as Dataset).fieldOf(index, groupBy);
  return value === undefined ? NO_GROUP : String(value);
}

function checkScore(name: string, score: unknown, index: number): number {
  const value = typeof score === "boolean" ? Number(score) : score;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new InvalidOptionError(
      `scorers.${name}`,
      `scorer ${name} returned ${String(score)} for example ${index}; a scorer returns a number in [0, 1] or a boolean`,
    );
  }
  return value;
}

interface Settings {
  metrics: readonly GenerationMetric[];
  generate: boolean;
  loss: boolean;
  concurrency: number;
}

function checkOptions(
  model: TunedModel,
  data: Dataset | readonly Example[],
  options: EvaluateOptions,
): Settings {
  if (typeof model !== "object" || model === null || typeof model.generate !== "function") {
    throw new InvalidOptionError("model", "evaluate needs a TunedModel (with generate)");
  }
  if (!(data instanceof Dataset) && !Array.isArray(data)) {
    throw new InvalidOptionError(
      "dataset",
      "evaluate needs a Dataset (Dataset.load / Dataset.from) or an array of { input, output } examples",
    );
  }
  const examples = data instanceof Dataset ? data.examples : data;
  if (examples.length === 0) {
    throw new InvalidOptionError("dataset", "there are no examples to evaluate");
  }
  examples.forEach((example, i) => {
    if (typeof example?.input !== "string" || typeof example?.output !== "string") {
      throw new InvalidOptionError(
        `dataset[${i}]`,
        `example ${i} is not an { input: string, output: string } example`,
      );
    }
  });
  const metrics = options.metrics ?? GENERATION_METRICS;
  for (const name of metrics) {
    if (!(GENERATION_METRICS as readonly string[]).includes(name)) {
      throw new InvalidOptionError(
        "metrics",
        `unknown metric ${String(name)} (known: ${GENERATION_METRICS.join(", ")})`,
      );
    }
  }
  for (const [name, scorer] of Object.entries(options.scorers ?? {})) {
    if (typeof scorer !== "function") {
      throw new InvalidOptionError(`scorers.${name}`, `scorer ${name} is not a function`);
    }
    if ((GENERATION_METRICS as readonly string[]).includes(name) || RESERVED.has(name)) {
      throw new InvalidOptionError(
        `scorers.${name}`,
        `a scorer cannot be named ${name}: that is a built-in metric`,
      );
    }
  }
  if (typeof options.groupBy === "string" && !(data instanceof Dataset)) {
    throw new InvalidOptionError(
      "groupBy",
      `groupBy "${options.groupBy}" reads a record field, so the data must be a Dataset; pass a function for an array of examples`,
    );
  }
  if (
    options.groupBy !== undefined &&
    typeof options.groupBy !== "string" &&
    typeof options.groupBy !== "function"
  ) {
    throw new InvalidOptionError("groupBy", "groupBy must be a field name or a function");
  }
  const local = hasResponseLoss(model);
  const concurrency = options.concurrency ?? (local ? 1 : 4);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionError(
      "concurrency",
      `concurrency must be an integer ≥ 1, got ${String(options.concurrency)}`,
    );
  }
  const generate = options.generate ?? true;
  const loss = options.loss ?? true;
  if (!generate && !(loss && local)) {
    throw new InvalidOptionError(
      "generate",
      local
        ? "generate: false and loss: false leave nothing to evaluate"
        : `generate: false leaves nothing to evaluate: ${model.name} cannot compute response losses (only local models can)`,
    );
  }
  return { metrics, generate, loss, concurrency };
}

const RESERVED = new Set(["loss", "perplexity"]);

/**
 * Runs `work(i)` for i in [0, count) with at most `limit` in flight; stops starting new work
 * once `signal` fires or a call fails, and rejects with the first failure.
 */
async function forEachLimited(
  count: number,
  limit: number,
  signal: AbortSignal | undefined,
  work: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < count) {
      throwIfAborted(signal);
      const index = next++;
      try {
        await work(index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const workers = Array.from({ length: Math.min(limit, count) }, worker);
  const outcomes = await Promise.allSettled(workers);
  throwIfAborted(signal);
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
  if (failure) throw failure.reason;
}
