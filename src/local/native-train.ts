/**
 * The training half of the native addon (`native/node/src/train.rs`): its types (napi-rs's,
 * generated) and how it is loaded. Internal; `LocalTuner` is the public API.
 */
import type * as Binding from "../../native/binding.cjs";
import { loadNativeWith, type NativeAddon } from "./native.js";

/** @internal One tokenized example; `labels` is -100 where the token is not learned. */
export type NativeTrainSequence = Binding.NativeTrainSequence;

/** @internal Training settings; absent fields take the core's defaults. */
export type NativeTrainOptions = Binding.NativeTrainOptions;

/** @internal `started`, then `step`/`checkpoint`*, then exactly one `done` or `error`. */
export type NativeTrainEvent = Binding.NativeTrainEvent;

/** @internal The addon, with `train`, `trainModel` and `loadModelWithAdapter`. */
export type NativeTrainingAddon = NativeAddon;

/** The addon with its training exports; a build without them is reported as stale. */
export function loadTrainingAddon(): NativeTrainingAddon {
  return loadNativeWith(["train", "trainModel", "loadModelWithAdapter"], "training support");
}
