/**
 * The quick start: tune a model on this machine to increment numbers written the way the
 * seed examples write them ("41" → "42", "twenty two" → "twenty three", "1,999" → "2,000"),
 * and compare held-out answers before and after tuning.
 *
 *   npm ci && npm run quickstart                                  # the embedded demo model, offline
 *   npm run quickstart -- --model ./models/SmolLM2-135M-Instruct  # any supported model dir, GGUF or hub id
 *   npm run quickstart -- --epochs 2 --learning-rate 5e-4 --out runs/mine
 *
 * The default model (models/demo-counting) is a 1.7M-parameter demo that knows how to count
 * in digits and words but has never seen the "User: … Assistant: …" task.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { adviseEpochs, Dataset, isTunekitError, lossCurveSvg, sparkline } from "tunekit";
import {
  LocalTuner,
  loadModel,
  modelTemplateFiles,
  resolveModel,
  resolveTemplate,
  type TemplateDescriptor,
} from "tunekit/local";
import { baseModelAnswerer, exactMatch } from "./increment-eval.js";

const root = new URL("..", import.meta.url).pathname;
const DEMO_MODEL = join(root, "models/demo-counting");

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: DEMO_MODEL },
    epochs: { type: "string", default: "3" },
    "learning-rate": { type: "string" },
    "batch-size": { type: "string", default: "8" },
    out: { type: "string" },
    show: { type: "string", default: "8" },
  },
});

const isDemo = args.model === DEMO_MODEL;
// A tiny model learns this task with a learning rate 10× the recipe's 1e-4 (measured: 97%
// vs 33% held-out exact match after 3 epochs); real models keep the recipe's default.
const learningRate = Number(args["learning-rate"] ?? (isDemo ? 1e-3 : 1e-4));
const show = Number(args.show);
const outputDir =
  args.out ?? join(root, "runs", `quickstart-${new Date().toISOString().replace(/[:.]/g, "-")}`);

async function main(): Promise<void> {
  const train = await Dataset.load(join(root, "examples/data/increment.jsonl"));
  const heldOut = (await Dataset.load(join(root, "examples/data/increment-heldout.jsonl")))
    .examples;
  console.log(`Base model: ${args.model}${isDemo ? " (the embedded demo model)" : ""}`);
  console.log(
    `Training on ${train.size} examples; ${heldOut.length} held-out examples never seen in training.\n`,
  );

  // Before tuning: the base model, prompted exactly as the tuned model will be.
  const resolved = await resolveModel(args.model);
  const base = await loadModel(resolved.path);
  const template: TemplateDescriptor = resolveTemplate("auto", await modelTemplateFiles(base));
  const before = await exactMatch(baseModelAnswerer(base, template), heldOut, { show });
  console.log(`Before tuning: ${before.correct}/${heldOut.length} held-out answers exactly right`);
  console.log(before.shown.join("\n"));

  // Tune with LoRA.
  const tuner = new LocalTuner();
  const job = await tuner.tune({
    baseModel: args.model,
    dataset: train,
    hyperparameters: {
      epochCount: Number(args.epochs),
      batchSize: Number(args["batch-size"]),
      learningRate,
    },
    local: { outputDir, seed: 7 },
  });
  console.log(
    `\nTuning (LoRA r 8, alpha 32, ${args.epochs} epochs, learning rate ${learningRate}) …`,
  );
  let lastPrinted = 0;
  for await (const event of job.events()) {
    if (event.type === "log" && event.level === "warning")
      console.log(`  warning: ${event.message}`);
    if (event.type !== "progress") continue;
    const { completedSteps, totalSteps, snapshots, metrics } = event.progress;
    if (completedSteps - lastPrinted < 10 && completedSteps !== totalSteps) continue;
    lastPrinted = completedSteps;
    const loss = snapshots.at(-1)?.meanLoss.toFixed(4) ?? "—";
    const speed = metrics?.tokensPerSecond ? `${metrics.tokensPerSecond.toFixed(0)} tokens/s` : "";
    console.log(`  step ${completedSteps}/${totalSteps ?? "?"}  loss ${loss}  ${speed}`);
  }
  const tuned = await job.wait();

  const after = await exactMatch(
    (input) => tuned.generate(input, { maxOutputTokens: 24 }),
    heldOut,
    { show },
  );
  console.log(`\nAfter tuning: ${after.correct}/${heldOut.length} held-out answers exactly right`);
  console.log(after.shown.join("\n"));

  const snapshots = job.progress().snapshots;
  const chart = join(outputDir, "loss.svg");
  await writeFile(chart, lossCurveSvg(snapshots, { title: "quick start: increment" }));
  console.log(
    `\nHeld-out exact match: ${(before.accuracy * 100).toFixed(0)}% → ${(after.accuracy * 100).toFixed(0)}%`,
  );
  console.log(
    `Loss: ${sparkline(
      snapshots.map((s) => s.meanLoss),
      50,
    )}`,
  );
  console.log(adviseEpochs(snapshots).message);
  console.log(`Adapter (PEFT format): ${tuned.name}`);
  console.log(`Loss curve: ${chart}   (or: npx tunekit plot ${tuned.name})`);
  console.log(`Try it: npx tunekit generate ${tuned.name} "41"`);
}

main().catch((error: unknown) => {
  console.error(isTunekitError(error) ? `${error.name}: ${error.message}` : error);
  if (isTunekitError(error) && error.hint) console.error(`hint: ${error.hint}`);
  process.exitCode = 1;
});
