/** Wire shapes → tunekit's backend-neutral types. */
import type { Hyperparameters } from "../core/hyperparameters.js";
import type { Progress, TunedModelInfo, TuningSnapshot } from "../core/types.js";
import { decodeDescription } from "./template.js";
import type {
  WireCreateTunedModelMetadata,
  WireHyperparameters,
  WireTunedModel,
  WireTuningSnapshot,
} from "./wire.js";

/** Snapshots with every documented field present; incomplete ones are completed or skipped. */
export function toSnapshots(wire: readonly WireTuningSnapshot[] | undefined): TuningSnapshot[] {
  const out: TuningSnapshot[] = [];
  for (const s of wire ?? []) {
    if (typeof s?.step !== "number" || typeof s.meanLoss !== "number") continue;
    out.push({
      step: s.step,
      epoch: typeof s.epoch === "number" ? s.epoch : 0,
      meanLoss: s.meanLoss,
      computeTime: typeof s.computeTime === "string" ? s.computeTime : "",
    });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** Progress from operation metadata; fields the server did not send yet stay absent. */
export function progressFromMetadata(
  metadata: WireCreateTunedModelMetadata | undefined,
): Partial<Progress> {
  const progress: Partial<Progress> = {};
  if (!metadata) return progress;
  const snapshots = toSnapshots(metadata.snapshots);
  const last = snapshots.at(-1);
  if (typeof metadata.totalSteps === "number") progress.totalSteps = metadata.totalSteps;
  if (typeof metadata.completedSteps === "number")
    progress.completedSteps = metadata.completedSteps;
  else if (last) progress.completedSteps = last.step;
  if (typeof metadata.completedPercent === "number")
    progress.completedPercent = metadata.completedPercent;
  else if (progress.totalSteps && progress.completedSteps !== undefined) {
    progress.completedPercent = Math.min(
      100,
      (100 * progress.completedSteps) / progress.totalSteps,
    );
  }
  if (last && last.epoch > 0) progress.epoch = last.epoch;
  if (snapshots.length > 0) progress.snapshots = snapshots;
  return progress;
}

/** Progress from a tuned model's `tuningTask.snapshots` (when watching the model, not the operation). */
export function progressFromModel(model: WireTunedModel): Partial<Progress> {
  const snapshots = toSnapshots(model.tuningTask?.snapshots);
  const last = snapshots.at(-1);
  const progress: Partial<Progress> = {};
  if (last) {
    progress.completedSteps = last.step;
    if (last.epoch > 0) progress.epoch = last.epoch;
    progress.snapshots = snapshots;
  }
  if (model.state === "ACTIVE") progress.completedPercent = 100;
  return progress;
}

function toHyperparameters(
  wire: WireHyperparameters | undefined,
): Partial<Hyperparameters> | undefined {
  if (!wire) return undefined;
  const out: Partial<Hyperparameters> = {};
  if (typeof wire.epochCount === "number") out.epochCount = wire.epochCount;
  if (typeof wire.batchSize === "number") out.batchSize = wire.batchSize;
  if (typeof wire.learningRate === "number") out.learningRate = wire.learningRate;
  if (typeof wire.learningRateMultiplier === "number")
    out.learningRateMultiplier = wire.learningRateMultiplier;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** `CREATING` → `creating`, `ACTIVE` → `active`, `FAILED` → `failed`, anything else → `unknown`. */
export function toModelState(state: string | undefined): TunedModelInfo["state"] {
  switch (state) {
    case "CREATING":
      return "creating";
    case "ACTIVE":
      return "active";
    case "FAILED":
      return "failed";
    default:
      return "unknown";
  }
}

/** A `TunedModelInfo` from a wire `TunedModel` (the description's template line is split off). */
export function toModelInfo(model: WireTunedModel, fallbackName?: string): TunedModelInfo {
  const { description, template } = decodeDescription(model.description);
  const info: TunedModelInfo = {
    name: model.name ?? fallbackName ?? "",
    baseModel: model.baseModel ?? model.tunedModelSource?.baseModel ?? "",
    state: toModelState(model.state),
  };
  if (model.displayName !== undefined) info.displayName = model.displayName;
  if (description !== undefined) info.description = description;
  if (model.createTime !== undefined) info.createTime = model.createTime;
  if (model.updateTime !== undefined) info.updateTime = model.updateTime;
  const hyperparameters = toHyperparameters(model.tuningTask?.hyperparameters);
  if (hyperparameters) info.hyperparameters = hyperparameters;
  const snapshots = toSnapshots(model.tuningTask?.snapshots);
  if (snapshots.length > 0) info.snapshots = snapshots;
  if (template) info.template = template;
  if (typeof model.temperature === "number") info.temperature = model.temperature;
  if (typeof model.topP === "number") info.topP = model.topP;
  if (typeof model.topK === "number") info.topK = model.topK;
  return info;
}
