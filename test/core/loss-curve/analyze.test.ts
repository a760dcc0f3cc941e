import { describe, expect, it } from "vitest";
import { adviseEpochs, epochLosses } from "../../../src/core/loss-curve/analyze.js";
import type { TuningSnapshot } from "../../../src/core/types.js";

/** Builds snapshots with `perEpoch` steps per epoch from per-epoch loss levels. */
function curve(levels: number[], perEpoch = 3, evals?: number[]): TuningSnapshot[] {
  return levels.flatMap((loss, e) =>
    Array.from({ length: perEpoch }, (_, i) => {
      const snapshot: TuningSnapshot = {
        step: e * perEpoch + i + 1,
        epoch: e + 1,
        meanLoss: loss,
        computeTime: "2026-01-01T00:00:00.000Z",
      };
      if (evals && i === perEpoch - 1) snapshot.evalLoss = evals[e] as number;
      return snapshot;
    }),
  );
}

describe("epochLosses", () => {
  it("averages each epoch and keeps step ranges", () => {
    const epochs = epochLosses([
      { step: 1, epoch: 1, meanLoss: 4, computeTime: "" },
      { step: 2, epoch: 1, meanLoss: 2, computeTime: "" },
      { step: 3, epoch: 2, meanLoss: 1, computeTime: "" },
    ]);
    expect(epochs).toEqual([
      { epoch: 1, meanLoss: 3, firstStep: 1, lastStep: 2 },
      { epoch: 2, meanLoss: 1, firstStep: 3, lastStep: 3 },
    ]);
  });
});

describe("adviseEpochs", () => {
  it("spots a plateau and suggests the epoch where the curve flattened", () => {
    const advice = adviseEpochs(curve([3.0, 1.5, 0.5, 0.49, 0.485]));
    expect(advice.kind).toBe("plateau");
    expect(advice.suggestedEpochCount).toBe(3);
    expect(advice.message).toBe(
      "Loss flattened after epoch 3 — epochCount 3 would likely do as well.",
    );
  });

  it("says more epochs may help when loss still falls at the end", () => {
    const advice = adviseEpochs(curve([3.0, 2.0, 1.2, 0.6]));
    expect(advice.kind).toBe("still-improving");
    expect(advice.suggestedEpochCount).toBeUndefined();
  });

  it("counts a flat last epoch as one too many", () => {
    const advice = adviseEpochs(curve([3.0, 1.0, 0.99]));
    expect(advice.kind).toBe("plateau");
    expect(advice.suggestedEpochCount).toBe(2);
  });

  it("prefers rising validation loss as a sign of overfitting", () => {
    const advice = adviseEpochs(curve([3, 2, 1, 0.5], 2, [3.1, 2.2, 2.5, 2.9]));
    expect(advice.kind).toBe("overfitting");
    expect(advice.suggestedEpochCount).toBe(2);
  });

  it("needs two epochs to say anything", () => {
    expect(adviseEpochs(curve([3.0])).kind).toBe("insufficient-data");
    expect(adviseEpochs([]).kind).toBe("insufficient-data");
  });
});
