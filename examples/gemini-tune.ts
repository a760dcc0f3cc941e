/**
 * Tune a Gemini model on examples/data/increment.jsonl and watch it train.
 *
 *   npx tsx examples/gemini-tune.ts            # no key: runs against tunekit's fake service
 *   GEMINI_API_KEY=… npx tsx examples/gemini-tune.ts models/<tunable-base>
 *
 * Without GEMINI_API_KEY / GOOGLE_API_KEY the script starts the fake Gemini tuning service
 * (`tunekit/testing`) on a real HTTP server on 127.0.0.1 and talks to it over HTTP. With a key
 * it talks to the real Gemini API — where, since May 2025, no base model accepts tuning, so
 * expect a TuningUnavailableError that explains the alternatives.
 */
import { Dataset, isTunekitError } from "tunekit";
import { GeminiTuner } from "tunekit/gemini";
import { startFakeGeminiServer } from "tunekit/testing";

const realKey = process.env.GEMINI_API_KEY || process.env.GOOGLE_API_KEY;
const baseModel = process.argv[2] ?? "models/gemini-1.5-flash-001-tuning";

async function main(): Promise<void> {
  const fake = realKey
    ? undefined
    : await startFakeGeminiServer({ apiKey: "example-key", tuningEnabled: true, stepsPerPoll: 25 });
  if (fake) console.log(`No API key set: using the fake Gemini service at ${fake.url}`);
  const tuner = fake
    ? new GeminiTuner({
        apiKey: "example-key",
        baseUrl: fake.url,
        pollIntervalMs: 200,
        maxPollIntervalMs: 500,
      })
    : new GeminiTuner();

  try {
    const dataset = await Dataset.load(new URL("./data/increment.jsonl", import.meta.url).pathname);
    const job = await tuner.tune({
      baseModel,
      dataset,
      displayName: "Increment",
      hyperparameters: { epochCount: 3, batchSize: 4, learningRate: 0.001 },
    });
    console.log(`Started ${job.name}`);

    for await (const event of job.events()) {
      // `snapshot` events arrive once per step of the loss curve; this prints one line per poll.
      if (event.type === "progress") {
        const { completedSteps, totalSteps, completedPercent, epoch, snapshots } = event.progress;
        const bar = "#".repeat(Math.round((completedPercent ?? 0) / 5)).padEnd(20, ".");
        const loss = snapshots.at(-1)?.meanLoss.toFixed(4) ?? "—";
        console.log(
          `[${bar}] step ${completedSteps}/${totalSteps ?? "?"}  epoch ${epoch ?? "?"}  loss ${loss}`,
        );
      } else if (event.type === "state") {
        console.log(`state: ${event.state}`);
      } else if (event.type === "log") {
        console.log(`${event.level}: ${event.message}`);
      }
    }

    const model = await job.wait();
    console.log(`Tuned model ${model.name} (${model.info().state})`);
    for (const input of dataset.examples.slice(0, 2).map((example) => example.input)) {
      console.log(`  ${input} → ${await model.generate(input)}`);
    }
  } catch (error) {
    if (isTunekitError(error)) {
      console.error(`${error.name}: ${error.message}`);
      if (error.hint) console.error(`hint: ${error.hint}`);
      process.exitCode = 1;
    } else {
      throw error;
    }
  } finally {
    await fake?.close();
  }
}

await main();
