import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { InvalidOptionError } from "../../core/errors.js";
import { adviseEpochs } from "../../core/loss-curve/analyze.js";
import { sparkline } from "../../core/loss-curve/sparkline.js";
import { lossCurveSvg } from "../../core/loss-curve/svg.js";
import type { TuningSnapshot } from "../../core/types.js";
import type { Output } from "../output.js";

export interface PlotFlags {
  out?: string;
  title?: string;
}

/**
 * Reads snapshots from a run directory (its `metrics.jsonl`), a metrics/snapshots file,
 * or — through `remote` — a tuned model, and writes the loss curve as SVG.
 */
export async function plotCommand(
  target: string,
  flags: PlotFlags,
  out: Output,
  remote?: (name: string) => Promise<readonly TuningSnapshot[]>,
): Promise<number> {
  const snapshots = await loadSnapshots(target, remote);
  const file = flags.out ?? "loss.svg";
  await writeFile(file, lossCurveSvg(snapshots, { title: flags.title ?? `Loss — ${target}` }));
  const advice = adviseEpochs(snapshots);
  out.result(
    {
      out: file,
      points: snapshots.length,
      advice: {
        kind: advice.kind,
        message: advice.message,
        suggestedEpochCount: advice.suggestedEpochCount,
      },
    },
    () =>
      [
        `wrote ${file} (${snapshots.length} points)`,
        `loss ${sparkline(snapshots.map((s) => s.meanLoss))}`,
        advice.message,
      ].join("\n"),
  );
  return 0;
}

/** Snapshots from a file or directory; JSONL lines may be events (`type: "snapshot"`) or bare snapshots. */
export async function loadSnapshots(
  target: string,
  remote?: (name: string) => Promise<readonly TuningSnapshot[]>,
): Promise<TuningSnapshot[]> {
  const info = await stat(target).catch(() => undefined);
  if (!info) {
    if (remote && /^tunedModels\/|^projects\//.test(target)) return [...(await remote(target))];
    throw new InvalidOptionError(
      "target",
      `Nothing to plot at "${target}": not a file, directory or tuned model name`,
    );
  }
  const file = info.isDirectory() ? join(target, "metrics.jsonl") : target;
  const text = await readFile(file, "utf8").catch(() => {
    throw new InvalidOptionError("target", `No metrics found: ${file} does not exist`);
  });
  const snapshots: TuningSnapshot[] = [];
  const add = (value: unknown) => {
    const candidate =
      value && typeof value === "object" && (value as { type?: unknown }).type === "snapshot"
        ? (value as { snapshot: unknown }).snapshot
        : value;
    if (isSnapshot(candidate)) snapshots.push(candidate);
  };
  if (file.endsWith(".json")) {
    const parsed: unknown = JSON.parse(text);
    const list = Array.isArray(parsed)
      ? parsed
      : ((parsed as { snapshots?: unknown[] }).snapshots ?? []);
    list.forEach(add);
  } else {
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      try {
        add(JSON.parse(line));
      } catch {
        throw new InvalidOptionError("target", `${file} line ${i + 1} is not valid JSON`);
      }
    });
  }
  return snapshots.sort((a, b) => a.step - b.step);
}

function isSnapshot(value: unknown): value is TuningSnapshot {
  const v = value as Partial<TuningSnapshot> | null;
  return (
    !!v &&
    typeof v.step === "number" &&
    typeof v.epoch === "number" &&
    typeof v.meanLoss === "number"
  );
}
