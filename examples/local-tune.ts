/**
 * Tune a model on this machine with LoRA and compare its answers before and after.
 *
 *   npm run build:native && npm run build
 *   npx tsx examples/local-tune.ts                         # the embedded demo model
 *   npx tsx examples/local-tune.ts ./models/SmolLM2-135M   # any supported model directory or hub id
 *
 * Environment: TUNEKIT_EPOCHS, TUNEKIT_EXAMPLES (how many training examples to use, default
 * all), TUNEKIT_OUTPUT (the run directory, default runs/local-tune-<time>).
 */
import { Dataset, isTunekitError } from "tunekit";
import { LocalTuner, loadModel } from "tunekit/local";

const root = new URL("..", import.meta.url).pathname;
const baseModel = process.argv[2] ?? `${root}models/demo-counting`;
const template = "User: {instruction}{input}\n\nAssistant: ";

async function main(): Promise<void> {
  try {
    const all = await Dataset.load(`${root}examples/data/increment.jsonl`);
    const limit = Number(process.env.TUNEKIT_EXAMPLES ?? all.size);
    const dataset = Dataset.from(all.examples.slice(0, limit), { source: "increment.jsonl" });
    const heldOut = (
      await Dataset.load(`${root}examples/data/increment-heldout.jsonl`)
    ).examples.slice(0, 5);

    // Before: the base model with the same prompt the tuned model will get.
    const base = await loadModel(baseModel);
    console.log("Before tuning:");
    for (const { input } of heldOut) {
      const prompt = template.replace("{instruction}", "").replace("{input}", input);
      const { text } = await base.generate(prompt, { maxNewTokens: 12, stop: ["\n"] });
      console.log(`  ${input} → ${text.trim()}`);
    }

    const tuner = new LocalTuner({ warmupRatio: 0.05 });
    const local: NonNullable<Parameters<LocalTuner["tune"]>[0]["local"]> = { template, seed: 7 };
    if (process.env.TUNEKIT_OUTPUT) local.outputDir = process.env.TUNEKIT_OUTPUT;
    const job = await tuner.tune({
      baseModel,
      dataset,
      displayName: "local-tune",
      // A small model learns fastest with a higher rate than the 1e-4 default.
      hyperparameters: {
        epochCount: Number(process.env.TUNEKIT_EPOCHS ?? 3),
        batchSize: 8,
        learningRate: 1e-3,
      },
      local,
    });
    console.log(`Training in ${job.name}`);

    for await (const event of job.events()) {
      if (event.type === "progress") {
        const { completedSteps, totalSteps, completedPercent, snapshots, metrics } = event.progress;
        if (completedSteps === 0 || (completedSteps % 10 !== 0 && completedSteps !== totalSteps))
          continue;
        const bar = "#".repeat(Math.round((completedPercent ?? 0) / 5)).padEnd(20, ".");
        const loss = snapshots.at(-1)?.meanLoss.toFixed(4) ?? "—";
        const speed = metrics?.tokensPerSecond?.toFixed(0) ?? "?";
        console.log(
          `[${bar}] step ${completedSteps}/${totalSteps ?? "?"}  loss ${loss}  ${speed} tokens/s`,
        );
      } else if (event.type === "state") {
        console.log(`state: ${event.state}`);
      } else if (event.type === "log" && event.level === "warning") {
        console.log(`warning: ${event.message}`);
      }
    }

    const model = await job.wait();
    console.log("After tuning (the template is applied for you):");
    for (const { input, output } of heldOut) {
      console.log(
        `  ${input} → ${await model.generate(input, { maxOutputTokens: 12 })}   (expected ${output})`,
      );
    }
    console.log(`Adapter directory: ${model.name}`);
    console.log(`Loss curve: ${model.name}/metrics.jsonl (tunekit plot ${model.name})`);
  } catch (error) {
    if (isTunekitError(error)) {
      console.error(`${error.name}: ${error.message}`);
      if (error.hint) console.error(`hint: ${error.hint}`);
      process.exitCode = 1;
    } else {
      throw error;
    }
  }
}

await main();
