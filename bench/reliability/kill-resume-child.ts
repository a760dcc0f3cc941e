/**
 * Child half of the kill-and-resume run (kill-resume-harness.ts): starts (`tune`) or
 * continues (`resume`) one small local training run in `outputDir` with the built package and
 * prints a JSON line per step, so the parent can kill it with SIGKILL at any moment.
 *
 *   node --import tsx bench/reliability/kill-resume-child.ts tune|resume <outputDir>
 */
import { fileURLToPath } from "node:url";
import { Dataset, isTunekitError } from "tunekit";
import { LocalTuner } from "tunekit/local";

const [mode, outputDir] = process.argv.slice(2) as [string, string];
const out = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

// Dropout on and a cosine schedule with warmup: a resume must restore the dropout stream,
// the data order and the learning rate exactly for the adapter to come out identical.
const tuner = new LocalTuner({ warmupRatio: 0.1, schedule: "cosine" });
try {
  const job =
    mode === "tune"
      ? await tuner.tune({
          baseModel: root("test/fixtures/models/llama-tied-gqa"),
          dataset: await Dataset.load(root("examples/data/increment-seed.jsonl")),
          hyperparameters: { epochCount: 30, batchSize: 3, learningRate: 5e-3 },
          local: {
            outputDir,
            template: "User: {input}\n\nAssistant: ",
            lora: { rank: 4, alpha: 8, dropout: 0.1 },
            saveSteps: 3,
            seed: 5,
          },
        })
      : await tuner.resume(outputDir);
  for await (const event of job.events()) {
    if (event.type === "snapshot") out({ step: event.snapshot.step });
  }
  await job.wait();
  out({ done: true });
} catch (error) {
  // A run killed after it succeeded is complete: nothing to resume.
  if (isTunekitError(error) && /already succeeded/.test(error.message)) out({ done: true });
  else throw error;
}
