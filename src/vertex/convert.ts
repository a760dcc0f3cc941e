/** Vertex wire shapes → tunekit's backend-neutral types. */
import type { Hyperparameters } from "../core/hyperparameters.js";
import type { JobState, Progress, TunedModelInfo } from "../core/types.js";
import { decodeDescription } from "../remote/description-metadata.js";
import type { WireJobState, WireSupervisedTuningDataStats, WireTuningJob } from "./wire.js";

/** The `kind` of templates stored by this backend: the instruction sent as `systemInstruction`. */
export const VERTEX_TEMPLATE_KIND = "vertex-system-instruction";

/**
 * `JOB_STATE_*` → the shared states: QUEUED/PENDING → pending; RUNNING/UPDATING → running;
 * CANCELLING → running (until CANCELLED); SUCCEEDED → succeeded; FAILED/EXPIRED → failed;
 * CANCELLED → cancelled. PAUSED counts as running (the job still exists and may resume);
 * PARTIALLY_SUCCEEDED (a batch-prediction state) counts as failed; UNSPECIFIED or a missing
 * state as pending.
 */
export function toJobState(state: WireJobState | string | undefined): JobState {
  switch (state) {
    case "JOB_STATE_RUNNING":
    case "JOB_STATE_UPDATING":
    case "JOB_STATE_CANCELLING":
    case "JOB_STATE_PAUSED":
      return "running";
    case "JOB_STATE_SUCCEEDED":
      return "succeeded";
    case "JOB_STATE_FAILED":
    case "JOB_STATE_EXPIRED":
    case "JOB_STATE_PARTIALLY_SUCCEEDED":
      return "failed";
    case "JOB_STATE_CANCELLED":
      return "cancelled";
    default:
      return "pending";
  }
}

/** What Vertex reports about the training data once it has read it (`tuningDataStats`). */
export interface VertexDataStats {
  exampleCount?: number;
  /** Optimiser steps the job will run: the one progress-related number Vertex gives. */
  tuningStepCount?: number;
  totalTuningCharacterCount?: number;
  totalBillableTokenCount?: number;
  truncatedExampleCount?: number;
  /** 0-based indexes of truncated examples (Vertex may list only some). */
  truncatedExampleIndices?: number[];
  /** Why examples were dropped, as Vertex words it. */
  droppedExampleReasons?: string[];
}

function int64(value: string | undefined): number | undefined {
  if (typeof value !== "string" || !/^-?\d+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Parses `tuningDataStats.supervisedTuningDataStats` (int64 strings → numbers); undefined when absent. */
export function toDataStats(
  wire: WireSupervisedTuningDataStats | undefined,
): VertexDataStats | undefined {
  if (!wire) return undefined;
  const stats: VertexDataStats = {};
  const set = (key: keyof VertexDataStats, value: number | undefined) => {
    if (value !== undefined) (stats as Record<string, unknown>)[key] = value;
  };
  set("exampleCount", int64(wire.tuningDatasetExampleCount));
  set("tuningStepCount", int64(wire.tuningStepCount));
  set("totalTuningCharacterCount", int64(wire.totalTuningCharacterCount));
  set("totalBillableTokenCount", int64(wire.totalBillableTokenCount));
  set("truncatedExampleCount", int64(wire.totalTruncatedExampleCount));
  if (Array.isArray(wire.truncatedExampleIndices)) {
    const indices = wire.truncatedExampleIndices
      .map(int64)
      .filter((n): n is number => n !== undefined);
    if (indices.length > 0) stats.truncatedExampleIndices = indices;
  }
  if (Array.isArray(wire.droppedExampleReasons) && wire.droppedExampleReasons.length > 0) {
    stats.droppedExampleReasons = wire.droppedExampleReasons.filter((r) => typeof r === "string");
  }
  return Object.keys(stats).length > 0 ? stats : undefined;
}

/** One line describing the stats, for the job's log event. */
export function describeDataStats(stats: VertexDataStats): string {
  const parts: string[] = [];
  if (stats.exampleCount !== undefined) parts.push(`${stats.exampleCount} examples`);
  if (stats.tuningStepCount !== undefined) parts.push(`${stats.tuningStepCount} tuning steps`);
  if (stats.totalBillableTokenCount !== undefined)
    parts.push(`${stats.totalBillableTokenCount} billable tokens`);
  if (stats.truncatedExampleCount) parts.push(`${stats.truncatedExampleCount} examples truncated`);
  if (stats.droppedExampleReasons?.length)
    parts.push(
      `${stats.droppedExampleReasons.length} dropped (${stats.droppedExampleReasons.join("; ")})`,
    );
  return `Vertex AI read the training data: ${parts.join(", ") || "no counts reported"}`;
}

/**
 * The progress a job's wire state supports. Vertex reports no step-by-step progress and no
 * loss values through the tuningJobs API: `totalSteps` comes from `tuningStepCount` once the
 * data has been read; `completedSteps` stays 0 while the job runs (unknown, not invented) and
 * equals `totalSteps` once it succeeded. Data-stat counts go to `metrics`.
 */
export function progressFromJob(job: WireTuningJob): Partial<Progress> {
  const progress: Partial<Progress> = {};
  const stats = toDataStats(job.tuningDataStats?.supervisedTuningDataStats);
  if (stats?.tuningStepCount !== undefined) progress.totalSteps = stats.tuningStepCount;
  if (stats) {
    const metrics: Record<string, number> = {};
    if (stats.exampleCount !== undefined) metrics.exampleCount = stats.exampleCount;
    if (stats.tuningStepCount !== undefined) metrics.tuningStepCount = stats.tuningStepCount;
    if (stats.totalBillableTokenCount !== undefined)
      metrics.totalBillableTokenCount = stats.totalBillableTokenCount;
    if (stats.truncatedExampleCount !== undefined)
      metrics.truncatedExampleCount = stats.truncatedExampleCount;
    if (stats.droppedExampleReasons)
      metrics.droppedExampleCount = stats.droppedExampleReasons.length;
    if (Object.keys(metrics).length > 0) progress.metrics = metrics;
  }
  if (job.state === "JOB_STATE_SUCCEEDED") {
    progress.completedPercent = 100;
    if (progress.totalSteps !== undefined) progress.completedSteps = progress.totalSteps;
  }
  return progress;
}

/** `JOB_STATE_*` → the model-info states. */
export function toModelState(state: string | undefined): TunedModelInfo["state"] {
  switch (toJobState(state)) {
    case "succeeded":
      return "active";
    case "failed":
    case "cancelled":
      return "failed";
    case "pending":
    case "running":
      return state === undefined ? "unknown" : "creating";
  }
}

function hyperparametersOf(job: WireTuningJob): Partial<Hyperparameters> | undefined {
  const wire = job.supervisedTuningSpec?.hyperParameters;
  if (!wire) return undefined;
  const out: Partial<Hyperparameters> = {};
  const epochs = int64(wire.epochCount);
  if (epochs !== undefined) out.epochCount = epochs;
  if (typeof wire.learningRateMultiplier === "number")
    out.learningRateMultiplier = wire.learningRateMultiplier;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * A `TunedModelInfo` from a tuning job. `name` is the job's name (the handle every tunekit
 * call accepts); the deployed endpoint and model are on the job (`tunedModel`).
 */
export function toModelInfo(job: WireTuningJob, fallbackName?: string): TunedModelInfo {
  const { description, template } = decodeDescription(job.description, VERTEX_TEMPLATE_KIND);
  const info: TunedModelInfo = {
    name: job.name ?? fallbackName ?? "",
    baseModel: job.baseModel ?? "",
    state: toModelState(job.state),
  };
  if (job.tunedModelDisplayName !== undefined) info.displayName = job.tunedModelDisplayName;
  if (description !== undefined) info.description = description;
  if (job.createTime !== undefined) info.createTime = job.createTime;
  if (job.updateTime !== undefined) info.updateTime = job.updateTime;
  const hyperparameters = hyperparametersOf(job);
  if (hyperparameters) info.hyperparameters = hyperparameters;
  if (template) info.template = template;
  return info;
}
