/**
 * One function tunes and generates; the backend is a parameter. Pick it with TUNEKIT_BACKEND:
 *
 *   TUNEKIT_BACKEND=local  npx tsx examples/one-code-two-backends.ts   # LoRA on this machine
 *   TUNEKIT_BACKEND=gemini npx tsx examples/one-code-two-backends.ts   # Gemini (the fake without a key)
 *
 * Local runs are written under TUNEKIT_OUTPUT_ROOT (default runs/).
 *
 * The dataset, the request, the job handle and the tuned model are the same for both; only
 * the base model and each backend's own options differ.
 */
import { Dataset, isTunekitError, type TuneRequest, type Tuner } from "tunekit";
import { GeminiTuner } from "tunekit/gemini";
import { LocalTuner } from "tunekit/local";
import { startFakeGeminiServer } from "tunekit/testing";

/** Tunes `request` on `tuner`, prints progress, and answers `inputs` with the tuned model. */
async function tuneAndAsk(
  tuner: Tuner,
  request: TuneRequest,
  inputs: readonly string[],
): Promise<void> {
  const job = await tuner.tune(request);
  console.log(`[${tuner.backend}] started ${job.name}`);
  for await (const event of job.events()) {
    if (event.type === "snapshot" && event.snapshot.step % 10 === 0) {
      console.log(
        `[${tuner.backend}] step ${event.snapshot.step}  loss ${event.snapshot.meanLoss.toFixed(4)}`,
      );
    } else if (event.type === "state") {
      console.log(`[${tuner.backend}] state: ${event.state}`);
    }
  }
  const model = await job.wait();
  for (const input of inputs) {
    console.log(
      `[${tuner.backend}] ${input} → ${await model.generate(input, { maxOutputTokens: 16 })}`,
    );
  }
}

async function main(): Promise<void> {
  const backend = process.env.TUNEKIT_BACKEND ?? "local";
  const root = new URL("..", import.meta.url).pathname;
  // The same examples either way (the Gemini API wants at least 20).
  const dataset = Dataset.from(
    Array.from({ length: 24 }, (_, i) => ({ input: String(i), output: String(i + 1) })),
  );
  const inputs = ["3", "9", "17"];

  if (backend === "local") {
    await tuneAndAsk(
      new LocalTuner({ warmupRatio: 0.03, outputRoot: process.env.TUNEKIT_OUTPUT_ROOT ?? "runs" }),
      {
        // A tiny random test model: it only shows the mechanics (it memorises the examples).
        baseModel: process.env.TUNEKIT_MODEL ?? `${root}test/fixtures/models/llama-tied-gqa`,
        dataset,
        hyperparameters: { epochCount: 80, batchSize: 8, learningRate: 1e-2 },
        local: {
          template: "User: {input}\n\nAssistant: ",
          lora: { alpha: 16, dropout: 0 },
          seed: 7,
        },
      },
      inputs,
    );
    return;
  }
  if (backend !== "gemini")
    throw new Error(`TUNEKIT_BACKEND must be "local" or "gemini", not ${backend}`);
  const realKey = process.env.GEMINI_API_KEY || process.env.GOOGLE_API_KEY;
  const fake = realKey
    ? undefined
    : await startFakeGeminiServer({ apiKey: "example-key", tuningEnabled: true, stepsPerPoll: 4 });
  if (fake) console.log(`No API key set: using the fake Gemini service at ${fake.url}`);
  try {
    await tuneAndAsk(
      fake
        ? new GeminiTuner({ apiKey: "example-key", baseUrl: fake.url, pollIntervalMs: 50 })
        : new GeminiTuner(),
      {
        baseModel: "models/gemini-1.5-flash-001-tuning",
        dataset,
        hyperparameters: { epochCount: 2, batchSize: 4, learningRate: 0.001 },
      },
      inputs,
    );
  } finally {
    await fake?.close();
  }
}

try {
  await main();
} catch (error) {
  if (!isTunekitError(error)) throw error;
  console.error(`${error.name}: ${error.message}`);
  if (error.hint) console.error(`hint: ${error.hint}`);
  process.exitCode = 1;
}
