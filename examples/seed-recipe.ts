/**
 * The seed's local recipe, exactly, through `LocalTuner`: LoRA r 8, alpha 32, dropout 0.1 on
 * q/k/v/o/gate/up/down, learning rate 1e-4, 3 epochs, batch 8 × gradient accumulation 2,
 * max length 384, the `User: …\n\nAssistant: …<eos>` template with the prompt tokens masked
 * out of the loss (-100), on examples/data/increment.jsonl.
 *
 *   npm run build:native && npm run build
 *   npx tsx examples/seed-recipe.ts                                   # the demo model
 *   npx tsx examples/seed-recipe.ts --model ./deepseek-llm-7b-base    # any supported model
 *   npx tsx examples/seed-recipe.ts --model m.gguf --base-weights stored --checkpointing
 *   npx tsx examples/seed-recipe.ts --quick                           # one optimiser step
 *
 * `--base-weights q4_k` keeps a safetensors base in 4 bits while tuning (QLoRA-style; the seed
 * ran DeepSeek-LLM-7B this way). `--quick` uses 16 examples and 1 epoch: one step of batch
 * 8 × accumulation 2, for a smoke test. `--out DIR` sets the run directory. A model whose
 * context is shorter than 384 tokens (the demo model: 256) gets its whole context instead.
 */
import { parseArgs } from "node:util";
import { Dataset, isTunekitError } from "tunekit";
import { type BaseWeights, LocalTuner, loadModel } from "tunekit/local";

const root = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    model: { type: "string", default: `${root}models/demo-counting` },
    "base-weights": { type: "string" },
    checkpointing: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    out: { type: "string" },
  },
});

async function main(): Promise<void> {
  try {
    const all = await Dataset.load(`${root}examples/data/increment.jsonl`);
    const dataset = values.quick
      ? Dataset.from(all.examples.slice(0, 16), { source: "increment.jsonl" })
      : all;
    // The recipe's 384 tokens, or the model's whole context when it is shorter (the demo
    // model's is 256).
    const base = await loadModel(values.model);
    const maxLength = Math.min(384, base.config.maxPositionEmbeddings);
    base.dispose();
    if (maxLength < 384)
      console.log(`maxLength ${maxLength}: the model's context is shorter than 384`);
    const tuner = new LocalTuner({
      gradientCheckpointing: values.checkpointing,
      ...(values["base-weights"] ? { baseWeights: values["base-weights"] as BaseWeights } : {}),
    });
    const job = await tuner.tune({
      baseModel: values.model,
      dataset,
      displayName: "seed-recipe",
      hyperparameters: { epochCount: values.quick ? 1 : 3, batchSize: 8, learningRate: 1e-4 },
      local: {
        lora: {
          rank: 8,
          alpha: 32,
          dropout: 0.1,
          targetModules: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
          ],
        },
        gradientAccumulationSteps: 2,
        maxLength,
        // The response is followed by the model's end-of-sequence token; prompt tokens get -100.
        template: "User: {instruction}{input}\n\nAssistant: ",
        ...(values.out ? { outputDir: values.out } : {}),
      },
    });
    console.log(`Training in ${job.name}`);
    for await (const event of job.events()) {
      if (event.type !== "progress") continue;
      const { completedSteps, totalSteps, snapshots, metrics } = event.progress;
      if (completedSteps === 0) continue;
      const loss = snapshots.at(-1)?.meanLoss.toFixed(4) ?? "—";
      const speed = metrics?.tokensPerSecond?.toFixed(0) ?? "?";
      console.log(`step ${completedSteps}/${totalSteps ?? "?"}  loss ${loss}  ${speed} tok/s`);
    }
    await job.wait();
    console.log(`state: ${job.state()}`);
    console.log(`Adapter directory: ${job.name}`);
  } catch (error) {
    if (isTunekitError(error)) {
      console.error(`${error.code}: ${error.message}`);
      process.exitCode = 1;
    } else throw error;
  }
}

await main();
