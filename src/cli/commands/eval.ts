import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LoadOptions } from "../../core/dataset/example.js";
import { Dataset } from "../../core/dataset/index.js";
import { InvalidOptionError, ModelLoadError, UnsupportedOptionError } from "../../core/errors.js";
import {
  type EvaluateOptions,
  type EvaluationReport,
  evaluate,
  evaluationMarkdown,
  formatMetric,
  metricNames,
  metricRows,
  textTable,
  worstExamples,
} from "../../core/evaluate/index.js";
import type { TunedModel } from "../../core/types.js";
import { type BaseWeights, checkBaseWeights } from "../../local/base-weights.js";
import { backendForName, createBackend, type RemoteFlags } from "../backends.js";
import { EXIT } from "../exit-codes.js";
import { optionalNumber } from "../flags.js";
import type { Output } from "../output.js";

/** Flags of `tunekit eval` as commander hands them over. */
export interface EvalFlags extends RemoteFlags {
  baseline?: string;
  groupBy?: string;
  report?: string;
  worst?: string;
  maxOutputTokens?: string;
  concurrency?: string;
  loss?: boolean;
  inputColumn?: string;
  outputColumn?: string;
  encoding?: string;
  baseWeights?: string;
}

/** A model to evaluate, and how to release it afterwards. */
interface Opened {
  model: TunedModel;
  close(): Promise<void>;
}

/**
 * Opens `name` the way every command names models: a Vertex or Gemini tuned model, a local run
 * or adapter directory (it has `adapter_config.json`), or else a base local model (directory,
 * GGUF file or hub id) prompted as tuning would prompt it.
 */
async function openModel(name: string, flags: EvalFlags, out: Output): Promise<Opened> {
  const backend = backendForName(name);
  const isAdapter = backend === "local" && existsSync(join(name, "adapter_config.json"));
  // Applies to base models only: a tuned model's base is loaded merged with its adapter.
  const baseWeights = isAdapter ? undefined : (flags.baseWeights as BaseWeights | undefined);
  if (backend !== "local") {
    const tuner = (await createBackend(backend, flags, out.io.env)).tuner;
    return { model: await tuner.getModel(name), close: async () => {} };
  }
  const local = await import("../../local/index.js");
  if (
    !existsSync(join(name, "adapter_config.json")) &&
    existsSync(join(name, "tunekit-run.json"))
  ) {
    throw new ModelLoadError(`${name} is a run that has not finished: it has no adapter yet`, {
      path: name,
      hint: `Evaluate one of its checkpoints (${join(name, "checkpoint-<step>")}), or finish it with \`tunekit resume ${name}\``,
    });
  }
  if (isAdapter) {
    const model = await new local.LocalTuner().getModel(name);
    return { model, close: () => model.dispose() };
  }
  const signal = out.io.interrupt;
  const model = await local.LocalBaseModel.open(name, {
    ...(signal ? { signal } : {}),
    ...(baseWeights === undefined ? {} : { baseWeights }),
  });
  return { model, close: () => model.dispose() };
}

/**
 * `tunekit eval <model> <data>`: scores a model on a dataset (exact, normalised and contained
 * matches; loss and perplexity for local models), beside a `--baseline` model when given, with
 * per-slice results (`--group-by`) and a markdown report of the worst examples (`--report`).
 */
export async function evalCommand(
  modelName: string,
  data: string,
  flags: EvalFlags,
  out: Output,
): Promise<number> {
  const maxOutputTokens = optionalNumber("--max-output-tokens", flags.maxOutputTokens, {
    integer: true,
    min: 1,
  });
  const concurrency = optionalNumber("--concurrency", flags.concurrency, { integer: true, min: 1 });
  const worst = optionalNumber("--worst", flags.worst, { integer: true, min: 0 }) ?? 10;
  if ((flags.inputColumn === undefined) !== (flags.outputColumn === undefined)) {
    throw new InvalidOptionError(
      flags.inputColumn === undefined ? "--input-column" : "--output-column",
      "--input-column and --output-column go together",
    );
  }
  const signal = out.io.interrupt;
  const loadOptions: LoadOptions = {};
  if (signal) loadOptions.signal = signal;
  if (flags.encoding) loadOptions.encoding = flags.encoding;
  if (flags.inputColumn && flags.outputColumn) {
    loadOptions.columns = { input: flags.inputColumn, output: flags.outputColumn };
  }
  checkBaseWeights(flags.baseWeights, "--base-weights");
  const isLocalBase = (name: string) =>
    backendForName(name) === "local" && !existsSync(join(name, "adapter_config.json"));
  if (
    flags.baseWeights !== undefined &&
    !isLocalBase(modelName) &&
    !(flags.baseline !== undefined && isLocalBase(flags.baseline))
  ) {
    throw new UnsupportedOptionError(
      backendForName(modelName),
      "--base-weights",
      `--base-weights applies to a local base model (directory, GGUF file or hub id), and ${modelName}${flags.baseline === undefined ? " is" : ` and ${flags.baseline} are`} not one: a tuned model loads its base merged with the adapter`,
    );
  }
  const dataset = await Dataset.load(data, loadOptions);

  const options: EvaluateOptions = { loss: flags.loss !== false };
  if (maxOutputTokens !== undefined) options.generation = { temperature: 0, maxOutputTokens };
  if (concurrency !== undefined) options.concurrency = concurrency;
  if (flags.groupBy !== undefined) options.groupBy = flags.groupBy;
  if (signal) options.signal = signal;

  const run = async (name: string): Promise<EvaluationReport> => {
    const opened = await openModel(name, flags, out);
    try {
      let lastShown = 0;
      return await evaluate(opened.model, dataset, {
        ...options,
        onProgress: ({ phase, completed, total }) => {
          // A line every 10% on a terminal; nothing under --json or when piped.
          if (!out.io.stderr.isTTY || out.json) return;
          const step = Math.max(1, Math.ceil(total / 10));
          if (completed === total || completed - lastShown >= step) {
            lastShown = completed === total ? 0 : completed;
            out.note(
              `  ${name}: ${phase === "generate" ? "answers" : "loss"} ${completed}/${total}`,
            );
          }
        },
      });
    } finally {
      await opened.close();
    }
  };

  const baseline = flags.baseline === undefined ? undefined : await run(flags.baseline);
  const report = await run(modelName);

  if (flags.report !== undefined) {
    await writeFile(
      flags.report,
      evaluationMarkdown(report, { ...(baseline ? { baseline } : {}), worst, dataset: data }),
    );
  }

  out.result(
    {
      dataset: data,
      examples: report.examples,
      ...(baseline ? { baseline } : {}),
      model: report,
      ...(flags.report !== undefined ? { report: flags.report } : {}),
    },
    () => humanReport(report, baseline, data, worst, flags.report),
  );
  return EXIT.ok;
}

function humanReport(
  report: EvaluationReport,
  baseline: EvaluationReport | undefined,
  data: string,
  worst: number,
  reportFile: string | undefined,
): string {
  const reports = baseline ? [baseline, report] : [report];
  const head = baseline ? ["", "baseline", "model"] : ["", "model"];
  const lines = [
    baseline
      ? `${report.examples} examples from ${data}\n  baseline: ${baseline.model}\n  model:    ${report.model}`
      : `${report.model} on ${report.examples} examples from ${data}`,
    "",
    textTable([head, ...metricRows(reports)]),
  ];
  if (report.slices) {
    const names = metricNames(report).slice(0, 3);
    const rows = Object.entries(report.slices).map(([key, slice]) => [
      key,
      String(slice.examples),
      ...names.map((n) => {
        const now = formatMetric(n, slice.metrics[n]);
        const before = baseline?.slices?.[key]?.metrics[n];
        return baseline ? `${formatMetric(n, before)} → ${now}` : now;
      }),
    ]);
    lines.push("", textTable([["slice", "examples", ...names], ...rows]));
  }
  const shown = worstExamples(report, Math.min(worst, 5)).filter(
    (r) => Object.values(r.scores).some((s) => s < 1) || r.output === undefined,
  );
  if (shown.length > 0 && shown.some((r) => r.output !== undefined)) {
    lines.push("", "Worst answers:");
    for (const r of shown) {
      const answer = (r.output ?? "").replace(/\n/g, "⏎");
      const display = answer.length > 40 ? `${answer.slice(0, 40)}…` : answer;
      lines.push(`  ✗ ${r.input} → ${display || "(nothing)"}   (expected ${r.expected})`);
    }
  }
  if (reportFile !== undefined) lines.push("", `Report: ${reportFile}`);
  return lines.join("\n");
}
