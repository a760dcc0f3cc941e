/**
 * `LocalTuner`: LoRA tuning on this machine behind the common `Tuner` interface.
 *
 * | Setting | Default | Where |
 * | --- | --- | --- |
 * | LoRA rank / alpha / dropout | 8 / 32 / 0.1 | `local.lora` |
 * | target modules | q, k, v, o, gate, up, down projections | `local.lora.targetModules` |
 * | learning rate | 1e-4 (× `learningRateMultiplier`) | `hyperparameters` |
 * | epochs / batch size | 3 / 4 | `hyperparameters` |
 * | schedule | linear decay, no warmup; AdamW β 0.9/0.999, ε 1e-8, no weight decay, clip 1.0 | tuner options |
 * | max length | 1024 tokens, capped by the model's context | `local.maxLength` |
 * | checkpoints | every epoch (at most 200 steps apart), on cancel and at the end | `local.saveSteps` |
 * | seed | 42 | `local.seed` |
 *
 * These are the seed recipe's (HF PEFT + Trainer) values. They suit real models; a tiny
 * model learns a small task far faster with a higher learning rate (the tests use 1e-2).
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { raceAbort } from "../core/abort.js";
import { Dataset } from "../core/dataset/dataset.js";
import {
  InvalidOptionError,
  LocalTrainingError,
  ModelLoadError,
  throwIfAborted,
} from "../core/errors.js";
import { type Hyperparameters, parseHyperparameters } from "../core/hyperparameters.js";
import { JobStateMachine } from "../core/job-state.js";
import type {
  ListModelsOptions,
  LocalTuneOptions,
  TunedModelInfo,
  TuneRequest,
  Tuner,
  TuningSnapshot,
} from "../core/types.js";
import { fromNativeError } from "./errors.js";
import { type ResolveModelOptions, resolveModel } from "./hub/resolve.js";
import {
  type LocalReporter,
  LocalTuningJob,
  type NativeRunParams,
  newestCheckpointStep,
  type RunRecord,
  readRunRecord,
  SEQUENCES_FILE,
  startNativeRun,
  writeRunRecord,
} from "./job.js";
import { type BaseWeights, checkBaseWeights, LocalModel } from "./model.js";
import type { NativeModelHandle } from "./native.js";
import {
  loadTrainingAddon,
  type NativeTrainOptions,
  type NativeTrainSequence,
} from "./native-train.js";
import { createLocalProfile } from "./profile.js";
import { modelTemplateFiles } from "./prompt/chat.js";
import { loadTemplate, saveTemplate } from "./prompt/store.js";
import {
  resolveTemplate,
  type TemplateDescriptor,
  type TemplateOption,
} from "./prompt/template.js";
import {
  buildSequences,
  type SequenceWarning,
  type TrainOn,
  tokenizerFromModel,
} from "./sequences.js";
import { tensorBoardReporter } from "./tensorboard-reporter.js";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  LocalTunedModel,
  METRICS_FILE,
  RUN_FILE,
  readSnapshots,
  requireDirectory,
} from "./tuned-model.js";

/** The seed recipe's defaults (see the table in the module docs). */
export const LOCAL_DEFAULTS = Object.freeze({
  epochCount: 3,
  batchSize: 4,
  learningRate: 1e-4,
  loraRank: 8,
  loraAlpha: 32,
  loraDropout: 0.1,
  targetModules: Object.freeze([
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
  ]),
  maxLength: 1024,
  seed: 42,
});

/** The most steps between two checkpoints when `local.saveSteps` is not given. */
const DEFAULT_SAVE_STEPS = 200;

/** The projections LoRA can target in the supported architectures. */
const KNOWN_MODULES: ReadonlySet<string> = new Set(LOCAL_DEFAULTS.targetModules);

/** Options of {@link LocalTuner}: defaults for every run it starts. */
export interface LocalTunerOptions {
  /** Where runs go when a request has no `local.outputDir` (`<root>/<name>-<time>`). @default "runs" */
  outputRoot?: string;
  /** Receives every record of every run (also written to `metrics.jsonl`). */
  reporter?: LocalReporter;
  /** How hub ids are resolved and downloaded (cache, token, offline, progress). */
  hub?: ResolveModelOptions;
  /** Learning-rate schedule after warmup. @default "linear" */
  schedule?: "linear" | "cosine" | "constant";
  /** Warmup as a fraction of all steps (HF `warmup_ratio`). @default 0 */
  warmupRatio?: number;
  /** Global gradient-norm clip; 0 disables. @default 1 */
  maxGradNorm?: number;
  /** AdamW weight decay. @default 0 */
  weightDecay?: number;
  /** Recompute each layer in the backward pass (less memory, ~30% slower). @default false */
  gradientCheckpointing?: boolean;
  /** Refuse runs whose memory estimate exceeds available memory. @default true */
  checkMemory?: boolean;
  /**
   * Write TensorBoard scalars (loss, learning rate, tokens/s, memory, validation loss) into
   * each run directory as the run goes, for `tensorboard --logdir runs/`. @default true
   */
  tensorboard?: boolean;
  /**
   * How the frozen base's weight matrices are held while training (QLoRA-style): `"stored"`
   * keeps a GGUF base's quantised blocks and a safetensors base's bf16/f16 as they are;
   * `"q8_0"` / `"q4_k"` quantise a safetensors base while loading (bitsandbytes'
   * `load_in_8bit` / `load_in_4bit` analogue); `"f32"` dequantises everything; `"bf16"` rounds
   * the frozen matrices to bf16 and computes their products in bf16 with f32 accumulation
   * (mixed precision, the fast option on CPUs with AVX512-BF16). LoRA weights, gradients and
   * the optimiser stay f32 in every case.
   * @default "stored" for a GGUF file, "f32" for a model directory
   *
   * @example
   * ```ts skip="needs a model and minutes of CPU"
   * const tuner = new LocalTuner({ baseWeights: "q4_k" });
   * ```
   */
  baseWeights?: BaseWeights;
}

function checkInt(value: unknown, path: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(
      path,
      `Invalid ${path}: must be an integer ≥ ${min}, got ${String(value)}`,
    );
  }
  return value;
}

function checkNumber(
  value: unknown,
  path: string,
  ok: (v: number) => boolean,
  rule: string,
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || !ok(value)) {
    throw new InvalidOptionError(path, `Invalid ${path}: must be ${rule}, got ${String(value)}`);
  }
  return value;
}

/** The checked `local` part of a request. */
interface LocalSettings {
  rank: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  useRsLora: boolean;
  maxLength: number | undefined;
  gradientAccumulationSteps: number | undefined;
  outputDir: string | undefined;
  saveSteps: number | undefined;
  evalSteps: number | undefined;
  earlyStopping: { patience: number; threshold: number } | undefined;
  keepBest: boolean;
  template: TemplateOption | undefined;
  seed: number;
  trainOn: TrainOn;
}

const LOCAL_KEYS = new Set([
  "lora",
  "maxLength",
  "gradientAccumulationSteps",
  "outputDir",
  "saveSteps",
  "evalSteps",
  "earlyStopping",
  "keepBest",
  "template",
  "seed",
  "trainOn",
]);
const LORA_KEYS = new Set(["rank", "alpha", "dropout", "targetModules", "useRsLora"]);

/** Validates `request.local` (every field, unknown keys included) before any work. */
export function parseLocalOptions(local: LocalTuneOptions | undefined): LocalSettings {
  const o = (local ?? {}) as Record<string, unknown>;
  if (typeof o !== "object" || o === null) {
    throw new InvalidOptionError("local", "local must be an object");
  }
  for (const key of Object.keys(o)) {
    if (!LOCAL_KEYS.has(key)) {
      throw new InvalidOptionError(
        `local.${key}`,
        `Unknown local option ${key} (known: ${[...LOCAL_KEYS].join(", ")})`,
      );
    }
  }
  const lora = (o.lora ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(lora)) {
    if (!LORA_KEYS.has(key)) {
      throw new InvalidOptionError(
        `local.lora.${key}`,
        `Unknown LoRA option ${key} (known: ${[...LORA_KEYS].join(", ")})`,
      );
    }
  }
  const targets = lora.targetModules ?? LOCAL_DEFAULTS.targetModules;
  if (
    !Array.isArray(targets) ||
    targets.length === 0 ||
    !targets.every((t): t is string => typeof t === "string" && KNOWN_MODULES.has(t))
  ) {
    throw new InvalidOptionError(
      "local.lora.targetModules",
      `Invalid local.lora.targetModules: a non-empty list of ${[...KNOWN_MODULES].join(", ")}`,
    );
  }
  if (lora.useRsLora !== undefined && typeof lora.useRsLora !== "boolean") {
    throw new InvalidOptionError(
      "local.lora.useRsLora",
      "Invalid local.lora.useRsLora: must be a boolean",
    );
  }
  if (o.outputDir !== undefined && (typeof o.outputDir !== "string" || o.outputDir === "")) {
    throw new InvalidOptionError(
      "local.outputDir",
      "Invalid local.outputDir: must be a non-empty path",
    );
  }
  if (
    o.template !== undefined &&
    typeof o.template !== "string" &&
    (typeof o.template !== "object" || o.template === null)
  ) {
    throw new InvalidOptionError(
      "local.template",
      "Invalid local.template: a template name, a format string or an object",
    );
  }
  const seed = checkInt(o.seed, "local.seed", 0) ?? LOCAL_DEFAULTS.seed;
  let earlyStopping: LocalSettings["earlyStopping"];
  if (o.earlyStopping !== undefined) {
    const e = o.earlyStopping as Record<string, unknown>;
    if (typeof e !== "object" || e === null) {
      throw new InvalidOptionError(
        "local.earlyStopping",
        "Invalid local.earlyStopping: an object { patience, threshold? }",
      );
    }
    earlyStopping = {
      patience: checkInt(e.patience, "local.earlyStopping.patience", 1) ?? Number.NaN,
      threshold:
        checkNumber(e.threshold, "local.earlyStopping.threshold", (v) => v >= 0, "≥ 0") ?? 0,
    };
    if (Number.isNaN(earlyStopping.patience)) {
      throw new InvalidOptionError(
        "local.earlyStopping.patience",
        "Invalid local.earlyStopping.patience: must be an integer ≥ 1",
      );
    }
  }
  if (o.keepBest !== undefined && typeof o.keepBest !== "boolean") {
    throw new InvalidOptionError("local.keepBest", "Invalid local.keepBest: must be a boolean");
  }
  const evalSteps = checkInt(o.evalSteps, "local.evalSteps", 1);
  if ((earlyStopping || o.keepBest === true) && evalSteps === undefined) {
    throw new InvalidOptionError(
      earlyStopping ? "local.earlyStopping" : "local.keepBest",
      `local.${earlyStopping ? "earlyStopping" : "keepBest"} needs local.evalSteps: how often the validation set is evaluated`,
    );
  }
  if (o.trainOn !== undefined && o.trainOn !== "all-turns" && o.trainOn !== "last-turn") {
    throw new InvalidOptionError(
      "local.trainOn",
      `Invalid local.trainOn: "all-turns" or "last-turn", got ${JSON.stringify(o.trainOn)}`,
    );
  }
  return {
    rank: checkInt(lora.rank, "local.lora.rank", 1) ?? LOCAL_DEFAULTS.loraRank,
    alpha:
      checkNumber(lora.alpha, "local.lora.alpha", (v) => v > 0, "a number > 0") ??
      LOCAL_DEFAULTS.loraAlpha,
    dropout:
      checkNumber(lora.dropout, "local.lora.dropout", (v) => v >= 0 && v < 1, "in [0, 1)") ??
      LOCAL_DEFAULTS.loraDropout,
    targetModules: [...targets],
    useRsLora: (lora.useRsLora as boolean | undefined) ?? false,
    maxLength: checkInt(o.maxLength, "local.maxLength", 2),
    gradientAccumulationSteps: checkInt(
      o.gradientAccumulationSteps,
      "local.gradientAccumulationSteps",
      1,
    ),
    outputDir: o.outputDir as string | undefined,
    saveSteps: checkInt(o.saveSteps, "local.saveSteps", 1),
    evalSteps,
    earlyStopping,
    keepBest: o.keepBest === true,
    template: o.template as TemplateOption | undefined,
    seed,
    trainOn: (o.trainOn as TrainOn | undefined) ?? "all-turns",
  };
}

/** Loads the base model's native handle (shared by tokenization and training). */
async function loadHandle(
  path: string,
  signal: AbortSignal | undefined,
  baseWeights: BaseWeights | undefined,
): Promise<NativeModelHandle> {
  const loading = loadTrainingAddon()
    .loadModel(path, baseWeights)
    .catch((error: unknown) => {
      throw fromNativeError(error, { path });
    });
  // If the caller stops waiting, a later failure must not become an unhandled rejection.
  loading.catch(() => {});
  return raceAbort(loading, { signal, what: "loading the base model" });
}

const slug = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40) || "local";

async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}

function toNative(
  sequences: readonly { inputIds: number[]; labels: number[] }[],
): NativeTrainSequence[] {
  return sequences.map((s) => ({ inputIds: s.inputIds, labels: s.labels }));
}

/**
 * LoRA tuning on this machine, through the same `TuneRequest`, job handle and tuned-model
 * object as the remote backends. Training runs on a native thread (Rust, candle, CPU);
 * progress, snapshots and metrics arrive as job events and in `<outputDir>/metrics.jsonl`.
 *
 * - **Validation first.** Hyperparameters, local options, the base model, the template and
 *   every example's token length (the `local` dataset profile) are checked before anything is
 *   trained or written; truncation at `maxLength` is reported as a `warning` event.
 * - **Output directory.** `checkpoint-<step>/` (atomic, every `saveSteps` and at the end),
 *   `metrics.jsonl`, `tunekit.json` (the template), `tunekit-run.json` (the run), then the
 *   PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`). The tuned model's
 *   `name` is this directory.
 * - **Cancel** stops within one micro-batch and keeps the last checkpoint;
 *   `getJob(dir)` re-attaches (in this process, to the live job) and `job.resume()` continues.
 *
 * Defaults are the seed recipe's (see the module docs): rank 8, alpha 32, dropout 0.1 on the
 * seven projections, learning rate 1e-4, 3 epochs, batch size 4.
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 * import { LocalTuner } from "tunekit/local";
 *
 * const tuner = new LocalTuner();
 * const job = await tuner.tune({
 *   baseModel: "HuggingFaceTB/SmolLM2-135M-Instruct",
 *   dataset: await Dataset.load("examples/data/increment.jsonl"),
 *   local: { outputDir: "runs/increment" },
 * });
 * for await (const event of job.events()) if (event.type === "snapshot") console.log(event.snapshot);
 * const model = await job.wait();
 * console.log(await model.generate("41"));
 * ```
 */
export class LocalTuner implements Tuner {
  readonly backend = "local";
  readonly #options: LocalTunerOptions;
  /** Jobs running in this process, by output directory. */
  readonly #live = new Map<string, LocalTuningJob>();

  constructor(options: LocalTunerOptions = {}) {
    checkNumber(options.warmupRatio, "warmupRatio", (v) => v >= 0 && v < 1, "in [0, 1)");
    checkNumber(options.maxGradNorm, "maxGradNorm", (v) => v >= 0, "≥ 0");
    checkNumber(options.weightDecay, "weightDecay", (v) => v >= 0, "≥ 0");
    if (options.tensorboard !== undefined && typeof options.tensorboard !== "boolean") {
      throw new InvalidOptionError("tensorboard", "Invalid tensorboard: must be a boolean");
    }
    if (
      options.schedule !== undefined &&
      !["linear", "cosine", "constant"].includes(options.schedule)
    ) {
      throw new InvalidOptionError(
        "schedule",
        `Invalid schedule ${String(options.schedule)}: linear, cosine or constant`,
      );
    }
    checkBaseWeights(options.baseWeights, "baseWeights");
    this.#options = options;
  }

  /** The directory `listModels` scans. */
  get outputRoot(): string {
    return resolve(this.#options.outputRoot ?? "runs");
  }

  /**
   * Validates everything, writes the run's directory and starts training on a native thread;
   * returns at once with the running job.
   *
   * @throws InvalidOptionError for a bad hyperparameter or local option (named by `path`).
   * @throws InvalidDatasetError listing every example that cannot be trained.
   * @throws ModelLoadError when the base model cannot be found or loaded.
   * @throws NativeLoadError when the native addon is not built.
   */
  async tune(request: TuneRequest): Promise<LocalTuningJob> {
    if (typeof request !== "object" || request === null) {
      throw new InvalidOptionError("request", "tune() needs a TuneRequest object");
    }
    if (!(request.dataset instanceof Dataset)) {
      throw new InvalidOptionError(
        "dataset",
        "dataset must be a Dataset (Dataset.from(...) or await Dataset.load(path))",
      );
    }
    if (request.validation !== undefined && !(request.validation instanceof Dataset)) {
      throw new InvalidOptionError("validation", "validation must be a Dataset");
    }
    if (typeof request.baseModel !== "string" || request.baseModel.trim() === "") {
      throw new InvalidOptionError(
        "baseModel",
        "baseModel must be a model directory or a hub id (org/name[@revision])",
      );
    }
    const hyper = parseHyperparameters(request.hyperparameters);
    const local = parseLocalOptions(request.local);
    if ((local.earlyStopping || local.keepBest) && request.validation === undefined) {
      throw new InvalidOptionError(
        local.earlyStopping ? "local.earlyStopping" : "local.keepBest",
        "early stopping and keepBest need a validation set (request.validation)",
      );
    }
    const signal = request.signal;
    throwIfAborted(signal);

    const outputDir = resolve(
      local.outputDir ??
        join(
          this.outputRoot,
          `${slug(request.displayName ?? basename(request.baseModel))}-${Date.now().toString(36)}`,
        ),
    );
    if (this.#live.has(outputDir) || !(await isEmptyDir(outputDir))) {
      throw new InvalidOptionError(
        "local.outputDir",
        `local.outputDir ${outputDir} is not empty; choose a new directory (or resume the run there with tuner.getJob(dir))`,
      );
    }

    const hubOptions: ResolveModelOptions = { ...this.#options.hub };
    if (signal) hubOptions.signal = signal;
    const resolved = await resolveModel(request.baseModel, hubOptions);
    // A local base is stored by its absolute path (in the run record and the adapter's
    // base_model_name_or_path), so the run reopens from any working directory.
    const baseModel = resolved.kind === "hub" ? request.baseModel.trim() : resolved.path;
    // Loaded once: tokenized here, then trained by the native core with the same weights.
    const handle = await loadHandle(resolved.path, signal, this.#options.baseWeights);
    const model = new LocalModel(resolved.path, handle);
    const template = resolveTemplate(local.template, await modelTemplateFiles(model));
    const maxLength =
      local.maxLength ?? Math.min(LOCAL_DEFAULTS.maxLength, model.config.maxPositionEmbeddings);
    if (maxLength > model.config.maxPositionEmbeddings) {
      throw new InvalidOptionError(
        "local.maxLength",
        `local.maxLength ${maxLength} exceeds the model's context of ${model.config.maxPositionEmbeddings} tokens`,
      );
    }

    const warnings: string[] = [];
    const built = this.#sequences(
      model,
      template,
      maxLength,
      request.dataset,
      warnings,
      "training",
      local.trainOn,
    );
    const validation = request.validation
      ? this.#sequences(
          model,
          template,
          maxLength,
          request.validation,
          warnings,
          "validation",
          local.trainOn,
        )
      : undefined;
    throwIfAborted(signal);

    const epochCount = hyper.epochCount ?? LOCAL_DEFAULTS.epochCount;
    const batchSize = hyper.batchSize ?? LOCAL_DEFAULTS.batchSize;
    const learningRate =
      hyper.learningRate ?? LOCAL_DEFAULTS.learningRate * (hyper.learningRateMultiplier ?? 1);
    const native: Omit<NativeTrainOptions, "outputDir" | "resume"> = {
      epochs: epochCount,
      batchSize,
      learningRate,
      seed: local.seed,
      baseModel,
      loraRank: local.rank,
      loraAlpha: local.alpha,
      loraDropout: local.dropout,
      targetModules: local.targetModules,
      useRsLora: local.useRsLora,
      padTokenId: model.config.eosTokenIds[0] ?? 0,
      checkMemory: this.#options.checkMemory ?? true,
      gradientCheckpointing: this.#options.gradientCheckpointing ?? false,
    };
    if (local.gradientAccumulationSteps !== undefined)
      native.gradientAccumulationSteps = local.gradientAccumulationSteps;
    // A killed process keeps its last periodic checkpoint, so there is one by default: every
    // epoch, or every DEFAULT_SAVE_STEPS steps when epochs are long.
    const stepsPerEpoch = Math.ceil(
      built.length / (batchSize * (local.gradientAccumulationSteps ?? 1)),
    );
    native.saveSteps = local.saveSteps ?? Math.max(1, Math.min(stepsPerEpoch, DEFAULT_SAVE_STEPS));
    if (local.evalSteps !== undefined) native.evalSteps = local.evalSteps;
    if (local.earlyStopping) {
      native.earlyStoppingPatience = local.earlyStopping.patience;
      native.earlyStoppingThreshold = local.earlyStopping.threshold;
    }
    if (local.keepBest) native.loadBestAtEnd = true;
    if (this.#options.schedule !== undefined) native.schedule = this.#options.schedule;
    if (this.#options.warmupRatio !== undefined) native.warmupRatio = this.#options.warmupRatio;
    if (this.#options.maxGradNorm !== undefined) native.maxGradNorm = this.#options.maxGradNorm;
    if (this.#options.weightDecay !== undefined) native.weightDecay = this.#options.weightDecay;

    const now = new Date().toISOString();
    const hyperparameters: Partial<Hyperparameters> = { epochCount, batchSize, learningRate };
    const record: RunRecord = {
      version: 1,
      state: "pending",
      baseModel,
      baseModelPath: resolved.path,
      createTime: now,
      updateTime: now,
      hyperparameters,
      native,
    };
    if (request.displayName !== undefined) record.displayName = request.displayName;
    if (request.description !== undefined) record.description = request.description;

    await mkdir(outputDir, { recursive: true });
    await saveTemplate(outputDir, template);
    const sequences = toNative(built);
    const validationSequences = validation ? toNative(validation) : undefined;
    await writeFile(
      join(outputDir, SEQUENCES_FILE),
      JSON.stringify({ train: sequences, validation: validationSequences ?? null }),
    );
    writeRunRecord(outputDir, record);

    const machine = new JobStateMachine(outputDir);
    return this.#start(machine, {
      model: handle,
      warnings,
      sequences,
      validation: validationSequences,
      template,
      record,
      resume: false,
    });
  }

  #sequences(
    model: LocalModel,
    template: TemplateDescriptor,
    maxLength: number,
    dataset: Dataset,
    warnings: string[],
    what: string,
    trainOn: TrainOn,
  ): { inputIds: number[]; labels: number[] }[] {
    const tokenizer = tokenizerFromModel(model);
    // Over-long examples are warnings (truncated and reported); untrainable ones are errors.
    dataset.check(createLocalProfile({ tokenizer, template, maxLength, trainOn }));
    const onWarning = (w: SequenceWarning) =>
      warnings.push(what === "training" ? w.message : `${what} set: ${w.message}`);
    return buildSequences(dataset.examples, {
      tokenizer,
      template,
      maxLength,
      positionOf: (i) => dataset.positionOf(i),
      onWarning,
      trainOn,
    }).sequences;
  }

  #start(
    machine: JobStateMachine,
    run: {
      sequences: NativeTrainSequence[];
      validation: NativeTrainSequence[] | undefined;
      template: TemplateDescriptor;
      record: RunRecord;
      resume: boolean;
      model?: NativeModelHandle;
      warnings?: readonly string[];
      previousSnapshots?: readonly TuningSnapshot[];
    },
  ): LocalTuningJob {
    const outputDir = machine.name;
    const { record } = run;
    const modelInfo: Partial<TunedModelInfo> = {
      createTime: record.createTime,
      hyperparameters: record.hyperparameters ?? {},
    };
    if (record.displayName !== undefined) modelInfo.displayName = record.displayName;
    if (record.description !== undefined) modelInfo.description = record.description;
    const params: NativeRunParams = {
      machine,
      baseModel: record.baseModel,
      baseModelPath: record.baseModelPath,
      outputDir,
      template: run.template,
      sequences: run.sequences,
      validation: run.validation,
      options: { ...record.native, outputDir, resume: run.resume },
      record,
      reporter: this.#options.reporter,
      modelInfo,
    };
    if (this.#options.tensorboard !== false) params.tensorboard = tensorBoardReporter(outputDir);
    if (run.previousSnapshots) params.previousSnapshots = run.previousSnapshots;
    if (run.warnings) params.warnings = run.warnings;
    if (run.model) params.model = run.model;
    const cancel = startNativeRun(params);
    const job = new LocalTuningJob(machine, cancel, () => this.resume(outputDir));
    this.#live.set(outputDir, job);
    machine.outcome.then(
      () => this.#live.delete(outputDir),
      () => this.#live.delete(outputDir),
    );
    return job;
  }

  /**
   * Continues the run in `dir` from its latest complete checkpoint (a cancelled, failed or
   * interrupted run), with the same data, settings and data order.
   *
   * @throws LocalTrainingError when the run is still going or already finished, or has no record.
   */
  async resume(dir: string): Promise<LocalTuningJob> {
    const outputDir = resolve(dir);
    if (this.#live.has(outputDir)) {
      throw new LocalTrainingError(
        `Cannot resume ${outputDir}: the run is still going in this process`,
      );
    }
    await requireDirectory(dir);
    const record = await readRunRecord(outputDir);
    if (!record) {
      throw new ModelLoadError(
        `${outputDir} is not a tunekit run directory (${RUN_FILE} is missing)`,
        { path: outputDir },
      );
    }
    if (record.state === "succeeded") {
      throw new LocalTrainingError(`Cannot resume ${outputDir}: the run already succeeded`);
    }
    const template = await loadTemplate(outputDir);
    let data: { train: NativeTrainSequence[]; validation: NativeTrainSequence[] | null };
    try {
      data = JSON.parse(await readFile(join(outputDir, SEQUENCES_FILE), "utf8")) as typeof data;
    } catch (error) {
      throw new ModelLoadError(
        `${outputDir} cannot be resumed: ${SEQUENCES_FILE} is missing or unreadable`,
        {
          path: outputDir,
          cause: error,
        },
      );
    }
    if (!template) {
      throw new ModelLoadError(`${outputDir} cannot be resumed: tunekit.json is missing`, {
        path: outputDir,
      });
    }
    // Filtered by the step the native side actually resumes from (see startNativeRun): the
    // record's lastCheckpoint may lag the newest checkpoint on disk.
    const previous = await readSnapshots(outputDir);
    record.state = "pending";
    delete record.error;
    const machine = new JobStateMachine(outputDir);
    return this.#start(machine, {
      sequences: data.train,
      validation: data.validation ?? undefined,
      template,
      record,
      resume: true,
      previousSnapshots: previous,
    });
  }

  /**
   * Re-attaches to the run in `dir`: the live job when it runs in this process, otherwise a
   * finished job rebuilt from the directory (`succeeded` resolves `wait()` with the model;
   * `cancelled`, `failed` or interrupted runs can `resume()`).
   */
  async getJob(dir: string): Promise<LocalTuningJob> {
    const outputDir = resolve(dir);
    const live = this.#live.get(outputDir);
    if (live) return live;
    await requireDirectory(dir);
    const record = await readRunRecord(outputDir);
    if (!record) {
      throw new ModelLoadError(
        `${outputDir} is not a tunekit run directory (${RUN_FILE} is missing)`,
        {
          path: outputDir,
        },
      );
    }
    const machine = new JobStateMachine(outputDir);
    let snapshots = await readSnapshots(outputDir);
    let completedSteps = record.completedSteps ?? snapshots.at(-1)?.step ?? 0;
    if (record.state === "running" || record.state === "pending") {
      // Interrupted: what is kept is the newest complete checkpoint on disk (the record may
      // lag it by one), and steps logged after it will be trained again.
      const kept = await newestCheckpointStep(outputDir);
      completedSteps = kept ?? 0;
      snapshots = snapshots.filter((s) => s.step <= completedSteps);
    }
    const progress: Parameters<JobStateMachine["setProgress"]>[0] = { completedSteps, snapshots };
    if (record.totalSteps !== undefined) {
      progress.totalSteps = record.totalSteps;
      progress.completedPercent =
        record.totalSteps > 0 ? (100 * (progress.completedSteps ?? 0)) / record.totalSteps : 0;
    }
    const epoch = snapshots.at(-1)?.epoch;
    if (epoch !== undefined) progress.epoch = epoch;
    machine.setProgress(progress);
    const job = new LocalTuningJob(
      machine,
      async () => {},
      () => this.resume(outputDir),
    );
    if (record.state === "succeeded" && existsSync(join(outputDir, ADAPTER_WEIGHTS_FILE))) {
      machine.succeed(await this.getModel(outputDir));
    } else if (record.state === "cancelled") {
      machine.cancelled(
        `Tuning job ${outputDir} was cancelled after step ${record.completedSteps ?? 0}`,
      );
    } else {
      const why =
        record.state === "failed"
          ? (record.error ?? "the run failed")
          : "the run was interrupted (its process ended before it finished)";
      machine.fail(
        new LocalTrainingError(
          `${why}; resume it with job.resume() (or \`tunekit resume ${outputDir}\`)`,
        ),
      );
    }
    return job;
  }

  /** Opens an adapter directory (a finished run, or one of its `checkpoint-N`) for generation. */
  async getModel(dir: string): Promise<LocalTunedModel> {
    await requireDirectory(dir);
    const outputDir = resolve(dir);
    const record = await readRunRecord(outputDir);
    const info: Partial<TunedModelInfo> = {};
    if (record) {
      info.createTime = record.createTime;
      info.updateTime = record.updateTime;
      if (record.hyperparameters) info.hyperparameters = record.hyperparameters;
      if (record.displayName !== undefined) info.displayName = record.displayName;
      if (record.description !== undefined) info.description = record.description;
    }
    return LocalTunedModel.open(outputDir, { hub: this.#options.hub ?? {}, info });
  }

  /**
   * The tuned models under `outputRoot` (directories with an adapter and `tunekit.json`),
   * newest first. `filter` keeps names or display names containing it.
   */
  async *listModels(options: ListModelsOptions = {}): AsyncIterable<TunedModelInfo> {
    let entries: string[];
    try {
      entries = await readdir(this.outputRoot);
    } catch {
      return;
    }
    const found: { info: TunedModelInfo; time: number }[] = [];
    for (const entry of entries) {
      throwIfAborted(options.signal);
      const dir = join(this.outputRoot, entry);
      if (!existsSync(join(dir, ADAPTER_CONFIG_FILE)) || !existsSync(join(dir, "tunekit.json")))
        continue;
      try {
        const model = await this.getModel(dir);
        const info = model.info();
        const text = `${info.name} ${info.displayName ?? ""}`;
        if (options.filter && !text.includes(options.filter)) continue;
        found.push({ info, time: (await stat(dir)).mtimeMs });
      } catch {
        // Not openable (its base model is gone): skip it.
      }
    }
    found.sort((a, b) => b.time - a.time);
    for (const { info } of found) yield info;
  }

  /**
   * Deletes a run/adapter directory. Only directories tunekit wrote (with `tunekit-run.json`
   * or an adapter plus `tunekit.json`) are removed.
   *
   * @throws ModelLoadError when `dir` does not exist or is not a tunekit directory.
   * @throws LocalTrainingError when the run is still going (cancel it first).
   */
  async deleteModel(dir: string): Promise<void> {
    const outputDir = resolve(dir);
    if (!this.#live.has(outputDir)) await requireDirectory(dir);
    if (this.#live.has(outputDir)) {
      throw new LocalTrainingError(
        `${outputDir} is still training; cancel the job before deleting it`,
      );
    }
    const ours =
      existsSync(join(outputDir, RUN_FILE)) ||
      (existsSync(join(outputDir, ADAPTER_CONFIG_FILE)) &&
        existsSync(join(outputDir, "tunekit.json")));
    if (!ours) {
      throw new ModelLoadError(
        existsSync(outputDir)
          ? `${outputDir} is not a tunekit adapter or run directory; not deleting it`
          : `${outputDir} does not exist`,
        { path: outputDir },
      );
    }
    await rm(outputDir, { recursive: true, force: true });
  }
}

export { METRICS_FILE };
