import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Dataset } from "../../core/dataset/index.js";
import {
  formatDatasetIssue,
  InvalidOptionError,
  UnsupportedOptionError,
} from "../../core/errors.js";
import type { Hyperparameters } from "../../core/hyperparameters.js";
import { lossCurveSvg } from "../../core/loss-curve/index.js";
import type { LocalTuneOptions, TuneRequest, TuningJob } from "../../core/types.js";
import { type BaseWeights, checkBaseWeights } from "../../local/base-weights.js";
import { type CliBackend, createBackend, type RemoteFlags } from "../backends.js";
import { EXIT } from "../exit-codes.js";
import { optionalNumber } from "../flags.js";
import { followJob, jobLabel, progressJson } from "../follow.js";
import type { Output } from "../output.js";

/** The base model `tune --backend gemini` uses without `--model`. */
export const DEFAULT_GEMINI_MODEL = "models/gemini-1.5-flash-001-tuning";
/** A Gemini model Vertex AI tunes today (supervised fine-tuning). */
export const DEFAULT_VERTEX_MODEL = "gemini-2.5-flash";

/** Flags of `tunekit tune` as commander hands them over (all strings until parsed). */
export interface TuneFlags extends RemoteFlags {
  backend?: string;
  model?: string;
  epochs?: string;
  batchSize?: string;
  learningRate?: string;
  lrMultiplier?: string;
  rank?: string;
  alpha?: string;
  dropout?: string;
  maxLength?: string;
  out?: string;
  displayName?: string;
  description?: string;
  tunedModelId?: string;
  wait?: boolean;
  skipPreflight?: boolean;
  inputColumn?: string;
  outputColumn?: string;
  encoding?: string;
  validation?: string;
  evalSteps?: string;
  earlyStopping?: string;
  keepBest?: boolean;
  baseWeights?: string;
}

const LOCAL_ONLY = [
  "rank",
  "alpha",
  "dropout",
  "maxLength",
  "out",
  "evalSteps",
  "earlyStopping",
  "keepBest",
  "baseWeights",
] as const;
const GEMINI_ONLY = ["tunedModelId", "skipPreflight"] as const;

/**
 * `tunekit tune <data>`: loads the dataset, starts a job on the chosen backend and (unless
 * `--no-wait`) shows its progress until it ends, then the loss curve and the advice.
 */
export async function tuneCommand(data: string, flags: TuneFlags, out: Output): Promise<number> {
  const backendName = flags.backend ?? "gemini";
  checkBackendFlags(backendName, flags);
  const hyperparameters = parseHyperparameterFlags(flags);
  const local = backendName === "local" ? parseLocalFlags(flags) : undefined;
  checkBaseWeights(flags.baseWeights, "--base-weights");
  if (backendName === "local" && flags.model === undefined) {
    throw new InvalidOptionError(
      "--model",
      "--backend local needs --model: a model directory, GGUF file or hub id",
    );
  }
  const signal = out.io.interrupt;
  const dataset = await Dataset.load(data, {
    ...columnFlags(flags),
    ...(flags.encoding === undefined ? {} : { encoding: flags.encoding }),
    ...(signal ? { signal } : {}),
  });
  const validation =
    flags.validation === undefined
      ? undefined
      : await Dataset.load(flags.validation, {
          ...columnFlags(flags),
          ...(flags.encoding === undefined ? {} : { encoding: flags.encoding }),
          ...(signal ? { signal } : {}),
        });
  // Create the backend only after the dataset loaded: a bad file is reported without credentials.
  const backend = await createBackend(
    backendName,
    flags,
    out.io.env,
    flags.baseWeights === undefined ? {} : { baseWeights: flags.baseWeights as BaseWeights },
  );

  const request: TuneRequest = {
    baseModel:
      flags.model ?? (backendName === "vertex" ? DEFAULT_VERTEX_MODEL : DEFAULT_GEMINI_MODEL),
    dataset,
    hyperparameters,
    ...(validation ? { validation } : {}),
    ...(flags.displayName === undefined ? {} : { displayName: flags.displayName }),
    ...(flags.description === undefined ? {} : { description: flags.description }),
    ...(signal ? { signal } : {}),
  };
  if (backendName === "gemini") {
    request.gemini = {
      ...(flags.tunedModelId === undefined ? {} : { tunedModelId: flags.tunedModelId }),
      ...(flags.skipPreflight ? { skipPreflight: true } : {}),
    };
    for (const warning of dataset.validate("gemini").warnings)
      out.note(`warning: ${formatDatasetIssue(warning)}`);
  }
  if (local) request.local = local;

  out.note(
    `tuning ${request.baseModel} on ${dataset.size} examples from ${data} (${backend.name})`,
  );
  const job = await backend.tuner.tune(request);
  const name = jobLabel(job);
  out.note(`started ${name}${name === job.name ? "" : ` (${job.name})`}`);
  if (flags.wait === false) return started(job, backend, out);
  const code = await followJob(job, backend, out);
  if (backend.name === "local") await writeLossCurve(job, out);
  return code;
}

/** A local run's loss curve as `loss.svg` in its directory (as `tunekit demo` does). */
async function writeLossCurve(job: TuningJob, out: Output): Promise<void> {
  const snapshots = job.progress().snapshots;
  if (snapshots.length === 0) return;
  const file = join(job.name, "loss.svg");
  try {
    await writeFile(file, lossCurveSvg(snapshots, { title: `tunekit: ${job.name}` }));
    out.note(`loss curve: ${file}`);
  } catch (error) {
    out.note(`warning: could not write ${file}: ${String(error)}`);
  }
}

/** `--no-wait`: report the job and how to follow it. */
function started(job: TuningJob, backend: CliBackend, out: Output): number {
  const name = jobLabel(job);
  const watch = backend.reattach?.(name) ?? `tunekit watch ${name}`;
  out.result(
    {
      name,
      job: job.name,
      state: job.state(),
      progress: progressJson(job.progress()),
      watch,
      cancel: `tunekit cancel ${name}`,
    },
    () =>
      [
        name,
        `watch:  ${watch}`,
        `status: tunekit status ${name}`,
        `cancel: tunekit cancel ${name}`,
      ].join("\n"),
  );
  return EXIT.ok;
}

function checkBackendFlags(backend: string, flags: TuneFlags): void {
  const wrong = backend === "gemini" ? LOCAL_ONLY : GEMINI_ONLY;
  for (const key of wrong) {
    if (flags[key] === undefined || flags[key] === false) continue;
    const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new UnsupportedOptionError(
      backend,
      flag,
      `${flag} applies to --backend ${backend === "gemini" ? "local" : "gemini"} only, not ${backend}`,
    );
  }
}

function parseHyperparameterFlags(flags: TuneFlags): Partial<Hyperparameters> {
  const hp: Partial<Hyperparameters> = {};
  const epochs = optionalNumber("--epochs", flags.epochs, { integer: true, min: 1 });
  const batchSize = optionalNumber("--batch-size", flags.batchSize, { integer: true, min: 1 });
  const learningRate = optionalNumber("--learning-rate", flags.learningRate, {
    min: Number.MIN_VALUE,
  });
  const multiplier = optionalNumber("--lr-multiplier", flags.lrMultiplier, {
    min: Number.MIN_VALUE,
  });
  if (learningRate !== undefined && multiplier !== undefined) {
    throw new InvalidOptionError(
      "--learning-rate",
      "Give either --learning-rate or --lr-multiplier, not both",
    );
  }
  if (epochs !== undefined) hp.epochCount = epochs;
  if (batchSize !== undefined) hp.batchSize = batchSize;
  if (learningRate !== undefined) hp.learningRate = learningRate;
  if (multiplier !== undefined) hp.learningRateMultiplier = multiplier;
  return hp;
}

function parseLocalFlags(flags: TuneFlags): LocalTuneOptions {
  const rank = optionalNumber("--rank", flags.rank, { integer: true, min: 1 });
  const alpha = optionalNumber("--alpha", flags.alpha, { min: Number.MIN_VALUE });
  const dropout = optionalNumber("--dropout", flags.dropout, { min: 0, max: 0.99 });
  const maxLength = optionalNumber("--max-length", flags.maxLength, { integer: true, min: 1 });
  const evalSteps = optionalNumber("--eval-steps", flags.evalSteps, { integer: true, min: 1 });
  const patience = optionalNumber("--early-stopping", flags.earlyStopping, {
    integer: true,
    min: 1,
  });
  if ((patience !== undefined || flags.keepBest) && flags.validation === undefined) {
    throw new InvalidOptionError(
      patience !== undefined ? "--early-stopping" : "--keep-best",
      `${patience !== undefined ? "--early-stopping" : "--keep-best"} needs --validation <data> (and --eval-steps)`,
    );
  }
  const lora = {
    ...(rank === undefined ? {} : { rank }),
    ...(alpha === undefined ? {} : { alpha }),
    ...(dropout === undefined ? {} : { dropout }),
  };
  return {
    ...(Object.keys(lora).length > 0 ? { lora } : {}),
    ...(maxLength === undefined ? {} : { maxLength }),
    ...(flags.out === undefined ? {} : { outputDir: flags.out }),
    ...(evalSteps === undefined ? {} : { evalSteps }),
    ...(patience === undefined ? {} : { earlyStopping: { patience } }),
    ...(flags.keepBest ? { keepBest: true } : {}),
  };
}

function columnFlags(flags: TuneFlags): { columns?: { input: string; output: string } } {
  if ((flags.inputColumn === undefined) !== (flags.outputColumn === undefined)) {
    throw new InvalidOptionError(
      "--input-column",
      "Give both --input-column and --output-column, or neither",
    );
  }
  return flags.inputColumn !== undefined && flags.outputColumn !== undefined
    ? { columns: { input: flags.inputColumn, output: flags.outputColumn } }
    : {};
}
