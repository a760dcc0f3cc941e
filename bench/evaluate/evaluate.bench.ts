/**
 * What `evaluate()` costs beside the hand-written loop it replaces (generate each answer,
 * compare), on the same local model, the same held-out examples and in the same run; and
 * what the loss-only pass (`generate: false`: one forward per example, log-softmax in JS)
 * costs beside it.
 *
 *   npm run build:native && npx tsx bench/evaluate/evaluate.bench.ts \
 *     [model=models/demo-counting] [examples=60] [maxOutputTokens=24]
 *
 * The model is evaluated untuned (`LocalBaseModel`, the tuner's default template); pass a
 * GGUF file or model directory to measure a real model (e.g. Gemma 3 270M). A benchmark, not
 * a test: compare numbers only within one run.
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Dataset } from "../../src/core/dataset/dataset.js";
import { evaluate } from "../../src/core/evaluate/index.js";
import { LocalBaseModel } from "../../src/local/index.js";

const ROOT = join(import.meta.dirname, "..", "..");
const modelPath = process.argv[2] ?? join(ROOT, "models", "demo-counting");
const count = Number(process.argv[3] ?? 60);
const maxOutputTokens = Number(process.argv[4] ?? 24);

const all = await Dataset.load(join(ROOT, "examples", "data", "increment-heldout.jsonl"));
const examples = all.examples.slice(0, count);
const model = await LocalBaseModel.open(modelPath);
const generation = { temperature: 0, maxOutputTokens };

async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const result = await work();
  return [(performance.now() - start) / 1000, result];
}

// Warm-up: first-call costs (thread pools, caches) out of the way.
await model.generate(examples[0]?.input ?? "1", generation);

// Interleaved rounds, best of each: on a shared machine the load moves between rounds.
const rounds = 3;
let loopSeconds = Number.POSITIVE_INFINITY;
let evalSeconds = Number.POSITIVE_INFINITY;
let lossSeconds = Number.POSITIVE_INFINITY;
let correct = 0;
let report = await evaluate(model, examples.slice(0, 1), { loss: false, generation });
let lossReport = report;
for (let round = 0; round < rounds; round++) {
  const [loop, right] = await timed(async () => {
    let right = 0;
    for (const { input, output } of examples) {
      if ((await model.generate(input, generation)).trim() === output) right++;
    }
    return right;
  });
  const [full, fullReport] = await timed(() =>
    evaluate(model, examples, { loss: false, generation }),
  );
  const [loss, onlyLoss] = await timed(() => evaluate(model, examples, { generate: false }));
  loopSeconds = Math.min(loopSeconds, loop);
  evalSeconds = Math.min(evalSeconds, full);
  lossSeconds = Math.min(lossSeconds, loss);
  correct = right;
  report = fullReport;
  lossReport = onlyLoss;
}
await model.dispose();

const tokens = lossReport.results.reduce((n, r) => n + (r.tokens ?? 0), 0);
console.log(
  `model: ${modelPath}, ${examples.length} held-out examples, answers ≤ ${maxOutputTokens} tokens`,
);
console.log(
  `load average: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
console.log(
  `hand-written loop (generate + compare): ${loopSeconds.toFixed(2)} s, exact match ${correct}/${examples.length}`,
);
console.log(
  `evaluate (3 metrics, no loss):           ${evalSeconds.toFixed(2)} s = ${(evalSeconds / loopSeconds).toFixed(2)}× the loop, exact match ${Math.round((report.metrics.exactMatch ?? 0) * examples.length)}/${examples.length}`,
);
console.log(
  `evaluate loss only (generate: false):    ${lossSeconds.toFixed(2)} s = ${(lossSeconds / loopSeconds).toFixed(2)}× the loop, ${tokens} response tokens, loss ${lossReport.metrics.loss?.toFixed(4)}`,
);
