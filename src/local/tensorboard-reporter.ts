/**
 * A `LocalReporter` that writes a run's metrics as TensorBoard scalars, so
 * `tensorboard --logdir runs/` charts every local run live next to `metrics.jsonl`.
 */

import { TensorBoardWriter } from "../core/tensorboard/writer.js";
import { isTerminalState } from "../core/types.js";
import type { LocalReporter, LocalRunRecord } from "./job.js";

/** The scalar tags a local run writes. */
export const TENSORBOARD_TAGS = Object.freeze({
  loss: "train/loss",
  learningRate: "train/learning_rate",
  gradNorm: "train/grad_norm",
  tokensPerSecond: "train/tokens_per_second",
  peakMemory: "train/peak_memory_mib",
  evalLoss: "eval/loss",
});

/**
 * Writes each `step` record of a run to a TensorBoard event file in `logdir` (created on the
 * first step), and closes it when the run ends. `LocalTuner` adds one per run, writing into the
 * run directory (turn it off with `tensorboard: false`).
 *
 * @example
 * ```ts
 * const tuner = new LocalTuner({ tensorboard: false, reporter: tensorBoardReporter("tb/my-run") });
 * ```
 */
export function tensorBoardReporter(logdir: string): LocalReporter & { close(): void } {
  let writer: TensorBoardWriter | undefined;
  const report = (record: LocalRunRecord) => {
    if (record.type === "step") {
      writer ??= new TensorBoardWriter(logdir);
      const m = record.metrics;
      writer.scalars(record.step, {
        [TENSORBOARD_TAGS.loss]: m.loss,
        [TENSORBOARD_TAGS.learningRate]: m.learningRate,
        [TENSORBOARD_TAGS.gradNorm]: m.gradNorm,
        [TENSORBOARD_TAGS.tokensPerSecond]: m.tokensPerSecond,
        [TENSORBOARD_TAGS.peakMemory]:
          m.peakRssBytes === undefined ? undefined : m.peakRssBytes / 2 ** 20,
        [TENSORBOARD_TAGS.evalLoss]: m.evalLoss,
      });
    } else if (record.type === "state" && isTerminalState(record.state)) {
      close();
    }
  };
  const close = () => {
    writer?.close();
    writer = undefined;
  };
  return Object.assign(report, { close });
}
