import type { TuningSnapshot } from "../types.js";

/** Loss summary of one epoch. */
export interface EpochLoss {
  epoch: number;
  /** Mean of the epoch's snapshot losses. */
  meanLoss: number;
  /** Last validation loss reported during the epoch, if any. */
  evalLoss?: number;
  firstStep: number;
  lastStep: number;
}

/** What the loss curve says about the number of epochs. */
export interface PlateauAdvice {
  /**
   * - `plateau`: training loss stopped improving; fewer epochs would likely do as well.
   * - `overfitting`: validation loss rose after its best epoch.
   * - `still-improving`: loss was still falling in the last epoch; more epochs may help.
   * - `insufficient-data`: fewer than two epochs of snapshots.
   */
  kind: "plateau" | "overfitting" | "still-improving" | "insufficient-data";
  /** The epoch count the curve suggests, when it suggests one. */
  suggestedEpochCount?: number;
  /** One sentence a person can act on. */
  message: string;
  epochs: readonly EpochLoss[];
}

/** Tuning knobs of {@link adviseEpochs}. */
export interface PlateauOptions {
  /**
   * An epoch "counts" when it lowers the mean loss by at least this fraction of the
   * total improvement seen over the run. Default 0.05 (5 %).
   */
  minRelativeGain?: number;
}

/** Groups snapshots by epoch and averages their losses. */
export function epochLosses(snapshots: readonly TuningSnapshot[]): EpochLoss[] {
  const byEpoch = new Map<number, TuningSnapshot[]>();
  for (const snapshot of snapshots) {
    if (!Number.isFinite(snapshot.meanLoss)) continue;
    const list = byEpoch.get(snapshot.epoch) ?? [];
    list.push(snapshot);
    byEpoch.set(snapshot.epoch, list);
  }
  return [...byEpoch.entries()]
    .sort(([a], [b]) => a - b)
    .map(([epoch, list]) => {
      const sorted = [...list].sort((a, b) => a.step - b.step);
      const meanLoss = sorted.reduce((sum, s) => sum + s.meanLoss, 0) / sorted.length;
      const withEval = sorted.filter(
        (s) => s.evalLoss !== undefined && Number.isFinite(s.evalLoss),
      );
      const summary: EpochLoss = {
        epoch,
        meanLoss,
        firstStep: (sorted[0] as TuningSnapshot).step,
        lastStep: (sorted.at(-1) as TuningSnapshot).step,
      };
      const lastEval = withEval.at(-1)?.evalLoss;
      if (lastEval !== undefined) summary.evalLoss = lastEval;
      return summary;
    });
}

/**
 * Reads a loss curve and says whether the epoch count was about right — the seed's
 * advice "stop where the curve flattens", made mechanical.
 *
 * @example
 * ```ts
 * const advice = adviseEpochs(job.progress().snapshots);
 * console.log(advice.message); // "Loss flattened after epoch 3 — epochCount 3 would likely do as well."
 * ```
 */
export function adviseEpochs(
  snapshots: readonly TuningSnapshot[],
  options: PlateauOptions = {},
): PlateauAdvice {
  const epochs = epochLosses(snapshots);
  if (epochs.length < 2) {
    return {
      kind: "insufficient-data",
      epochs,
      message: "Not enough epochs to judge the loss curve (need at least two).",
    };
  }
  const last = epochs.at(-1) as EpochLoss;

  // Validation loss going up after its best epoch is the stronger signal.
  const withEval = epochs.filter((e) => e.evalLoss !== undefined);
  if (withEval.length >= 2) {
    const best = withEval.reduce((a, b) =>
      (b.evalLoss as number) < (a.evalLoss as number) ? b : a,
    );
    const lastEval = withEval.at(-1) as EpochLoss;
    if (
      best.epoch < lastEval.epoch &&
      (lastEval.evalLoss as number) > (best.evalLoss as number) * 1.01
    ) {
      return {
        kind: "overfitting",
        suggestedEpochCount: best.epoch,
        epochs,
        message: `Validation loss was lowest after epoch ${best.epoch} and rose afterwards — epochCount ${best.epoch} would likely generalise better.`,
      };
    }
  }

  const minGain = options.minRelativeGain ?? 0.05;
  const first = epochs[0] as EpochLoss;
  const best = Math.min(...epochs.map((e) => e.meanLoss));
  const total = first.meanLoss - best;
  if (!(total > 0)) {
    return {
      kind: "plateau",
      suggestedEpochCount: 1,
      epochs,
      message:
        "Loss did not improve after the first epoch — check the learning rate, or use epochCount 1.",
    };
  }
  // The last epoch whose improvement over the previous one was still meaningful.
  let lastUseful = 1;
  for (let i = 1; i < epochs.length; i++) {
    const gain = (epochs[i - 1] as EpochLoss).meanLoss - (epochs[i] as EpochLoss).meanLoss;
    if (gain >= minGain * total) lastUseful = (epochs[i] as EpochLoss).epoch;
  }
  if (lastUseful === last.epoch) {
    return {
      kind: "still-improving",
      epochs,
      message: `Loss was still falling in the last epoch (${last.epoch}) — more epochs may help.`,
    };
  }
  return {
    kind: "plateau",
    suggestedEpochCount: lastUseful,
    epochs,
    message: `Loss flattened after epoch ${lastUseful} — epochCount ${lastUseful} would likely do as well.`,
  };
}
