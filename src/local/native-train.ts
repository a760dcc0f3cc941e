/**
 * The training half of the native addon (`native/node/src/train.rs`): what it exports and how
 * it is loaded. Internal; `LocalTuner` is the public API.
 */
import {
  loadNativeWith,
  type NativeAddon,
  type NativeCancelToken,
  type NativeErrorInfo,
  type NativeModelHandle,
} from "./native.js";

/** @internal One tokenized example; `labels` is -100 where the token is not learned. */
export interface NativeTrainSequence {
  inputIds: number[];
  labels: number[];
}

/** @internal Training settings; absent fields take the core's defaults. */
export interface NativeTrainOptions {
  outputDir: string;
  epochs?: number;
  maxSteps?: number;
  batchSize?: number;
  gradientAccumulationSteps?: number;
  learningRate?: number;
  schedule?: "linear" | "cosine" | "constant";
  warmupSteps?: number;
  warmupRatio?: number;
  maxGradNorm?: number;
  weightDecay?: number;
  seed?: number;
  groupByLength?: boolean;
  saveSteps?: number;
  evalSteps?: number;
  baseModel?: string;
  gradientCheckpointing?: boolean;
  resume?: boolean;
  padTokenId?: number;
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  targetModules?: string[];
  useRsLora?: boolean;
  checkMemory?: boolean;
}

/** @internal `started`, then `step`/`checkpoint`*, then exactly one `done` or `error`. */
export interface NativeTrainEvent {
  kind: "started" | "step" | "checkpoint" | "done" | "error";
  step?: number | null;
  totalSteps?: number | null;
  /** Fractional epochs completed. */
  epoch?: number | null;
  loss?: number | null;
  evalLoss?: number | null;
  learningRate?: number | null;
  gradNorm?: number | null;
  tokensPerSecond?: number | null;
  elapsedMs?: number | null;
  peakRssBytes?: number | null;
  path?: string | null;
  lastCheckpoint?: string | null;
  cancelled?: boolean | null;
  resumedFromStep?: number | null;
  error?: NativeErrorInfo | null;
}

/** @internal */
export interface NativeTrainingAddon extends NativeAddon {
  train(
    modelPath: string,
    sequences: NativeTrainSequence[],
    validation: NativeTrainSequence[] | undefined | null,
    options: NativeTrainOptions,
    cancel: NativeCancelToken,
    onEvent: (event: NativeTrainEvent) => void,
  ): void;
  /** `train` on a model already loaded with `loadModel`: no second load, the weights are shared. */
  trainModel(
    model: NativeModelHandle,
    sequences: NativeTrainSequence[],
    validation: NativeTrainSequence[] | undefined | null,
    options: NativeTrainOptions,
    cancel: NativeCancelToken,
    onEvent: (event: NativeTrainEvent) => void,
  ): void;
  loadModelWithAdapter(modelPath: string, adapterDir: string): Promise<NativeModelHandle>;
}

/** The addon with its training exports; a build without them is reported as stale. */
export function loadTrainingAddon(): NativeTrainingAddon {
  return loadNativeWith<NativeTrainingAddon>(
    ["train", "trainModel", "loadModelWithAdapter"],
    "training support",
  );
}
