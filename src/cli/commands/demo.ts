import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Dataset } from "../../core/dataset/index.js";
import { type EvaluationReport, evaluate } from "../../core/evaluate/index.js";
import { adviseEpochs, lossCurveSvg, sparkline } from "../../core/loss-curve/index.js";
import type { TunedModel } from "../../core/types.js";
import { LocalBaseModel } from "../../local/base-model.js";
import { demoFiles } from "../../local/demo.js";
import { LocalTunedModel } from "../../local/tuned-model.js";
import { LocalTuner } from "../../local/tuner.js";
import { EXIT } from "../exit-codes.js";
import { optionalNumber } from "../flags.js";
import type { Output } from "../output.js";

/** Flags of `tunekit demo` as commander hands them over. */
export interface DemoFlags {
  model?: string;
  epochs?: string;
  learningRate?: string;
  batchSize?: string;
  out?: string;
  show?: string;
  heldOut?: string;
  seed?: string;
}

/** Longest answer generated per held-out input, in tokens. */
const MAX_ANSWER_TOKENS = 24;

interface Score {
  correct: number;
  total: number;
  accuracy: number;
  /** The first answers, rendered as `✓ input → answer` lines. */
  shown: string[];
  /** Correct and total answers per `kind` of the held-out rows (in first-seen order). */
  byKind: Record<string, { correct: number; total: number }>;
}

/**
 * `tunekit demo`: the quick start, from the installed package and offline. Scores the base
 * model on held-out increment examples, LoRA-tunes it on the training examples, scores the
 * tuned model the same way and prints both, with the adapter directory and the loss curve.
 * `--model` runs the same on any supported model (a directory, a GGUF file or a hub id).
 */
export async function demoCommand(flags: DemoFlags, out: Output): Promise<number> {
  const files = demoFiles();
  const isDemo = flags.model === undefined;
  const model = flags.model ?? files.model;
  const epochCount = optionalNumber("--epochs", flags.epochs, { integer: true, min: 1 }) ?? 3;
  const batchSize = optionalNumber("--batch-size", flags.batchSize, { integer: true, min: 1 }) ?? 8;
  // A 1.7M-parameter model learns this task with 10× the recipe's rate (measured with PEFT:
  // 97% vs 33% held-out exact match after 3 epochs); real models keep the recipe's 1e-4.
  const learningRate =
    optionalNumber("--learning-rate", flags.learningRate, { min: Number.MIN_VALUE }) ??
    (isDemo ? 1e-3 : 1e-4);
  const show = optionalNumber("--show", flags.show, { integer: true, min: 0 }) ?? 8;
  const seed = optionalNumber("--seed", flags.seed, { integer: true, min: 0 }) ?? 7;
  const heldOutPath = flags.heldOut === undefined ? files.heldOutData : resolve(flags.heldOut);
  const outputDir = resolve(
    flags.out ?? join("runs", `demo-${new Date().toISOString().replace(/[:.]/g, "-")}`),
  );
  const signal = out.io.interrupt;

  const train = await Dataset.load(files.trainingData, signal ? { signal } : {});
  const heldOut = await Dataset.load(heldOutPath, signal ? { signal } : {});
  out.line(`Base model: ${model}${isDemo ? " (the demo model shipped with tunekit)" : ""}`);
  out.line(
    `Training on ${train.size} examples; ${heldOut.size} held-out examples never seen in training.`,
  );
  out.line();

  // Before tuning: the base model, prompted exactly as the tuned model will be.
  const base = await LocalBaseModel.open(model, signal ? { signal } : {});
  let before: Score;
  try {
    before = await exactMatch(base, heldOut, show, signal);
  } finally {
    await base.dispose();
  }
  out.line(`Before tuning: ${before.correct}/${before.total} held-out answers exactly right`);
  for (const line of before.shown) out.line(line);

  out.line();
  out.line(`Tuning (LoRA r 8, alpha 32, ${epochCount} epochs, learning rate ${learningRate}) …`);
  const job = await new LocalTuner().tune({
    baseModel: model,
    dataset: train,
    hyperparameters: { epochCount, batchSize, learningRate },
    local: { outputDir, seed },
    ...(signal ? { signal } : {}),
  });
  // Ctrl-C cancels the run; it keeps the checkpoint of its last completed step.
  const cancel = () => void job.cancel().catch(() => {});
  signal?.addEventListener("abort", cancel, { once: true });
  let tuned: Awaited<ReturnType<typeof job.wait>>;
  try {
    let lastPrinted = 0;
    for await (const event of job.events()) {
      if (event.type === "log" && event.level === "warning") out.note(`warning: ${event.message}`);
      if (event.type !== "progress") continue;
      const { completedSteps, totalSteps, snapshots, metrics } = event.progress;
      if (completedSteps - lastPrinted < 10 && completedSteps !== totalSteps) continue;
      lastPrinted = completedSteps;
      const loss = snapshots.at(-1)?.meanLoss.toFixed(4) ?? "—";
      const speed = metrics?.tokensPerSecond
        ? `  ${metrics.tokensPerSecond.toFixed(0)} tokens/s`
        : "";
      out.line(`  step ${completedSteps}/${totalSteps ?? "?"}  loss ${loss}${speed}`);
    }
    tuned = await job.wait();
  } catch (error) {
    if (!signal?.aborted) throw error;
    out.note(`interrupted: the run in ${outputDir} kept its last completed step as a checkpoint`);
    return EXIT.interrupted;
  } finally {
    signal?.removeEventListener("abort", cancel);
  }

  let after: Score;
  try {
    after = await exactMatch(tuned, heldOut, show, signal);
  } finally {
    if (tuned instanceof LocalTunedModel) await tuned.dispose();
  }
  const snapshots = job.progress().snapshots;
  const chart = join(outputDir, "loss.svg");
  await mkdir(outputDir, { recursive: true });
  await writeFile(chart, lossCurveSvg(snapshots, { title: "tunekit demo: increment" }));

  const percent = (s: Score) => `${(s.accuracy * 100).toFixed(0)}%`;
  out.result(
    {
      model,
      trainingExamples: train.size,
      heldOutExamples: heldOut.size,
      heldOutData: heldOutPath,
      hyperparameters: { epochCount, batchSize, learningRate },
      seed,
      before: {
        correct: before.correct,
        total: before.total,
        accuracy: before.accuracy,
        byKind: before.byKind,
      },
      after: {
        correct: after.correct,
        total: after.total,
        accuracy: after.accuracy,
        byKind: after.byKind,
      },
      finalLoss: snapshots.at(-1)?.meanLoss ?? null,
      adapter: tuned.name,
      lossCurve: chart,
    },
    () =>
      [
        "",
        `After tuning: ${after.correct}/${after.total} held-out answers exactly right`,
        ...after.shown,
        "",
        `Held-out exact match: ${percent(before)} → ${percent(after)}`,
        ...kindLines(before, after),
        `Loss: ${sparkline(
          snapshots.map((s) => s.meanLoss),
          50,
        )}`,
        adviseEpochs(snapshots).message,
        `Adapter (PEFT format): ${tuned.name}`,
        `Loss curve: ${chart}   (or: npx tunekit plot ${tuned.name})`,
        `Try it: npx tunekit generate ${tuned.name} "41"`,
      ].join("\n"),
  );
  return EXIT.ok;
}

/** `  words-carry   4/15 → 14/15` per kind, when the held-out rows have more than one kind. */
function kindLines(before: Score, after: Score): string[] {
  const kinds = Object.keys(after.byKind);
  if (kinds.length < 2) return [];
  const width = Math.max(...kinds.map((k) => k.length));
  const cell = (s: Score, kind: string) => {
    const k = s.byKind[kind] ?? { correct: 0, total: 0 };
    return `${k.correct}/${k.total}`;
  };
  return [
    "Per kind (before → after):",
    ...kinds
      .sort()
      .map(
        (kind) =>
          `  ${kind.padEnd(width)}  ${cell(before, kind).padStart(7)} → ${cell(after, kind)}`,
      ),
  ];
}

/**
 * Exact match of `model`'s greedy answers over `heldOut`, through `evaluate` (as `tunekit eval`
 * scores), sliced by the rows' `kind` (rows without one count as `other`), with the first
 * `show` answers rendered as lines.
 */
async function exactMatch(
  model: TunedModel,
  heldOut: Dataset,
  show: number,
  signal: AbortSignal | undefined,
): Promise<Score> {
  const report: EvaluationReport = await evaluate(model, heldOut, {
    metrics: ["exactMatch"],
    loss: false,
    groupBy: (_, index) => {
      const kind = heldOut.fieldOf(index, "kind");
      return typeof kind === "string" ? kind : "other";
    },
    generation: { temperature: 0, maxOutputTokens: MAX_ANSWER_TOKENS },
    ...(signal ? { signal } : {}),
  });
  const byKind: Score["byKind"] = {};
  let correct = 0;
  const shown: string[] = [];
  for (const r of report.results) {
    const ok = r.scores.exactMatch === 1;
    if (ok) correct++;
    const kind = r.group ?? "other";
    const slice = byKind[kind] ?? { correct: 0, total: 0 };
    byKind[kind] = slice;
    slice.total++;
    if (ok) slice.correct++;
    if (shown.length < show) {
      const got = (r.output ?? "").trim();
      const display = got.length > 40 ? `${got.slice(0, 40)}…` : got;
      const expected = ok ? "" : `   (expected ${r.expected})`;
      shown.push(
        `  ${ok ? "✓" : "✗"} ${r.input} → ${display.replace(/\n/g, "⏎") || "(nothing)"}${expected}`,
      );
    }
  }
  const total = report.results.length;
  return { correct, total, accuracy: total === 0 ? 0 : correct / total, shown, byKind };
}
