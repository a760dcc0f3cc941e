import type { Dataset } from "./dataset/dataset.js";
import type { Hyperparameters } from "./hyperparameters.js";

/** The lifecycle of a tuning job, shared by every backend. */
export type JobState = "pending" | "running" | "succeeded" | "failed" | "cancelled";

/** States after which a job never changes again. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(["succeeded", "failed", "cancelled"]);

/** True for `succeeded`, `failed` and `cancelled`. */
export function isTerminalState(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

/**
 * One point of the loss curve. Mirrors the Gemini API's `TuningSnapshot`, so one
 * chart and one test helper serve every backend.
 */
export interface TuningSnapshot {
  /** 1-based optimiser step. */
  step: number;
  /** 1-based epoch the step belongs to. */
  epoch: number;
  /** Mean training loss over the step's batch. */
  meanLoss: number;
  /** When the step finished, as an ISO-8601 timestamp. */
  computeTime: string;
  /** Validation loss, when the backend evaluated at this step. */
  evalLoss?: number;
}

/** How far a job has come. Fields a backend cannot know yet are absent, never invented. */
export interface Progress {
  completedSteps: number;
  totalSteps?: number;
  /** 0–100. */
  completedPercent?: number;
  /** 1-based epoch currently running (or last finished). */
  epoch?: number;
  /** Every snapshot seen so far, in step order. */
  snapshots: readonly TuningSnapshot[];
  /** Backend extras (tokens/s, learning rate, peak memory, …). */
  metrics?: Readonly<Record<string, number>>;
}

/** Events a job emits, in order, to every subscriber of `events()`. */
export type JobEvent =
  | { type: "state"; state: JobState; previous?: JobState; at: string }
  | { type: "progress"; progress: Progress; at: string }
  | { type: "snapshot"; snapshot: TuningSnapshot; at: string }
  | {
      type: "log";
      level: "debug" | "info" | "warning";
      message: string;
      at: string;
      data?: unknown;
    }
  | { type: "error"; error: Error; at: string };

/** The training preamble/template stored with a tuned model so production prompts match training. */
export interface PromptTemplate {
  /** Text before the input, e.g. `"User: "`. `{instruction}` and `{input}` are substituted. */
  prompt?: string;
  /** Instruction/system preamble applied to every example. */
  instruction?: string;
  /** Free-form backend-specific marker (e.g. `"chat"` for the model's chat template). */
  kind?: string;
}

/** What a tuned model looks like from the outside, whatever the backend. */
export interface TunedModelInfo {
  /** `tunedModels/…`, a Vertex job/endpoint name, or an adapter directory. */
  name: string;
  baseModel: string;
  displayName?: string;
  description?: string;
  state: "creating" | "active" | "failed" | "unknown";
  createTime?: string;
  updateTime?: string;
  hyperparameters?: Partial<Hyperparameters>;
  snapshots?: readonly TuningSnapshot[];
  template?: PromptTemplate;
  /** Default sampling the tuned model uses when a call does not override it. */
  temperature?: number;
  topP?: number;
  topK?: number;
}

/** Sampling and control options for `TunedModel.generate`. */
export interface GenerateOptions {
  temperature?: number;
  topP?: number;
  topK?: number;
  maxOutputTokens?: number;
  stopSequences?: readonly string[];
  seed?: number;
  signal?: AbortSignal;
}

/** A model produced by tuning; `generate` applies the training template to the raw input. */
export interface TunedModel {
  readonly name: string;
  readonly baseModel: string;
  info(): TunedModelInfo;
  generate(input: string, options?: GenerateOptions): Promise<string>;
  generateStream?(input: string, options?: GenerateOptions): AsyncIterable<string>;
}

/** Options for waiting on a job. Aborting stops the waiting only, never the job. */
export interface WaitOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A running (or finished) tuning job. */
export interface TuningJob {
  readonly name: string;
  state(): JobState;
  progress(): Progress;
  /** Every subscriber first receives the current state, then each later event; ends at a terminal state. */
  events(options?: { signal?: AbortSignal }): AsyncIterable<JobEvent>;
  /**
   * Resolves with the tuned model on success; rejects with `TuningFailedError` or
   * `TuningCancelledError` when the job ends otherwise, `AbortedError` when `signal` fires and
   * `TimeoutError` when `timeoutMs` passes. Aborting or timing out stops the waiting only.
   */
  wait(options?: WaitOptions): Promise<TunedModel>;
  cancel(): Promise<void>;
}

/** Backend-specific request parts. Each backend reads only its own key. */
export interface GeminiTuneOptions {
  tunedModelId?: string;
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Skip `GET models/{base}` before creating (the check that tuning is offered). */
  skipPreflight?: boolean;
}

export interface LoraOptions {
  rank?: number;
  alpha?: number;
  dropout?: number;
  targetModules?: readonly string[];
  useRsLora?: boolean;
}

export interface LocalTuneOptions {
  lora?: LoraOptions;
  maxLength?: number;
  gradientAccumulationSteps?: number;
  outputDir?: string;
  saveSteps?: number;
  /** Evaluate the validation set every this many steps (and at the end). */
  evalSteps?: number;
  /**
   * Stop once `patience` evaluations in a row have not lowered the validation loss by more than
   * `threshold` (default 0). Needs `validation` and `evalSteps`.
   */
  earlyStopping?: { patience: number; threshold?: number };
  /**
   * Make the result the adapter of the evaluation with the lowest validation loss instead of
   * the last step's. Needs `validation` and `evalSteps`.
   */
  keepBest?: boolean;
  template?: string | PromptTemplate;
  seed?: number;
  /**
   * Which assistant turns of a multi-turn conversation carry the loss: every one
   * (`"all-turns"`, as TRL and MLX-LM do) or the last only (earlier answers are context).
   * @default "all-turns"
   */
  trainOn?: "all-turns" | "last-turn";
}

/** Vertex AI LoRA adapter sizes (`ADAPTER_SIZE_*`); not every size suits every base model. */
export type VertexAdapterSize = 1 | 2 | 4 | 8 | 16 | 32;

/**
 * The Vertex AI part of a request (`tunekit/vertex`). Training data is either uploaded from
 * `dataset` to `stagingUri` (after local validation) or read from `trainingDatasetUri`.
 */
export interface VertexTuneOptions {
  /**
   * `gs://bucket/prefix` where the converted JSONL is uploaded (as
   * `{prefix}/{request label}/training.jsonl` and `validation.jsonl`). Default: the tuner's
   * `stagingUri`.
   */
  stagingUri?: string;
  /** An existing `gs://…` JSONL in Vertex's format: nothing is uploaded for training. */
  trainingDatasetUri?: string;
  /** An existing `gs://…` JSONL used as the validation set (instead of `validation`). */
  validationDatasetUri?: string;
  /** LoRA adapter size (`adapterSize`); the service picks one when absent. */
  adapterSize?: VertexAdapterSize;
  /** Labels of the tuning job (keys/values ≤ 63 chars of lowercase letters, digits, `_`, `-`). */
  labels?: Record<string, string>;
  /** Export only the last checkpoint (`exportLastCheckpointOnly`). */
  exportLastCheckpointOnly?: boolean;
  /** Service account the tuning job runs as. */
  serviceAccount?: string;
  /** Cloud KMS key that protects the job and its outputs (`encryptionSpec.kmsKeyName`). */
  kmsKeyName?: string;
}

/** The one request every backend accepts. */
export interface TuneRequest {
  /** Base model: `models/gemini-…`, a Vertex model id, a local directory, a GGUF file or a hub id. */
  baseModel: string;
  dataset: Dataset;
  hyperparameters?: Partial<Hyperparameters>;
  displayName?: string;
  description?: string;
  validation?: Dataset;
  /** Cancels the *start* of the job (validation, upload, create); the running job is cancelled with `job.cancel()`. */
  signal?: AbortSignal;
  gemini?: GeminiTuneOptions;
  local?: LocalTuneOptions;
  vertex?: VertexTuneOptions;
}

export interface ListModelsOptions {
  pageSize?: number;
  filter?: string;
  signal?: AbortSignal;
}

/** The interface every backend implements. */
export interface Tuner {
  readonly backend: string;
  /** Validates everything, starts the job and returns at once. */
  tune(request: TuneRequest): Promise<TuningJob>;
  /** Re-attaches to a job by name (remote: operation or model name; local: checkpoint directory). */
  getJob(name: string): Promise<TuningJob>;
  getModel(name: string): Promise<TunedModel>;
  listModels(options?: ListModelsOptions): AsyncIterable<TunedModelInfo>;
  deleteModel(name: string): Promise<void>;
}
