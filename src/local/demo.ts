/**
 * The demo model and data that ship inside the package, so that tuning can be tried offline
 * right after `npm install tunekit` (`npx tunekit demo` uses them too).
 */
import { join } from "node:path";
import { packageRoot } from "./package-root.js";

/** Absolute paths of the demo model and its data. */
export interface DemoFiles {
  /**
   * `models/demo-counting`: a 1.7M-parameter Llama-style model that can count in digits and
   * words but has never seen the increment task. A toy, good for trying tunekit only.
   */
  model: string;
  /** `examples/data/increment.jsonl`: 400 examples of the increment task ("41" → "42"). */
  trainingData: string;
  /** `examples/data/increment-heldout.jsonl`: 120 examples never used in training. */
  heldOutData: string;
}

/**
 * Where the demo model and data are in this installation (the installed package or a clone).
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 * import { demoFiles, LocalTuner } from "tunekit/local";
 *
 * const demo = demoFiles();
 * const job = await new LocalTuner().tune({
 *   baseModel: demo.model,
 *   dataset: await Dataset.load(demo.trainingData),
 *   hyperparameters: { epochCount: 1, learningRate: 1e-3 },
 * });
 * ```
 */
export function demoFiles(): DemoFiles {
  const root = packageRoot();
  return {
    model: join(root, "models", "demo-counting"),
    trainingData: join(root, "examples", "data", "increment.jsonl"),
    heldOutData: join(root, "examples", "data", "increment-heldout.jsonl"),
  };
}
