/**
 * Tune Gemini on Vertex AI with examples/data/increment.jsonl: stage the data in Cloud Storage,
 * start a supervised tuning job, watch it, then call the tuned model.
 *
 *   npx tsx examples/vertex-tune.ts       # no project/bucket: runs against tunekit's fake service
 *   GOOGLE_CLOUD_PROJECT=my-project TUNEKIT_VERTEX_STAGING_URI=gs://my-bucket/tuning \
 *     npx tsx examples/vertex-tune.ts [base model, default gemini-2.5-flash]
 *
 * Real runs use Application Default Credentials (`gcloud auth application-default login`, or
 * GOOGLE_APPLICATION_CREDENTIALS) and GOOGLE_CLOUD_LOCATION (default us-central1). Without a
 * project and a staging bucket the script starts the fake Vertex AI + Cloud Storage service
 * (`tunekit/testing`) on a real HTTP server on 127.0.0.1 and talks to it over HTTP.
 *
 * What Vertex reports while a job runs: its state and, once it has read the data, the data
 * stats (examples, tuning steps, billable tokens, truncated/dropped examples). It reports no
 * per-step progress or loss values through this API, so none are shown.
 */
import { Dataset, isTunekitError } from "tunekit";
import { startFakeVertexServer } from "tunekit/testing";
import { VertexTuner } from "tunekit/vertex";

const project = process.env.GOOGLE_CLOUD_PROJECT;
const stagingUri = process.env.TUNEKIT_VERTEX_STAGING_URI;
const baseModel = process.argv[2] ?? "gemini-2.5-flash";

async function main(): Promise<void> {
  const real = project && stagingUri ? { project, stagingUri } : undefined;
  const fake = real
    ? undefined
    : await startFakeVertexServer({ accessToken: "example-token", stepsPerPoll: 25 });
  if (fake) {
    console.log(
      `No GOOGLE_CLOUD_PROJECT / TUNEKIT_VERTEX_STAGING_URI: using the fake Vertex AI service at ${fake.url}`,
    );
  }
  const tuner = fake
    ? new VertexTuner({
        project: "example-project",
        location: "us-central1",
        accessToken: "example-token",
        stagingUri: "gs://example-bucket/tuning",
        baseUrl: fake.url,
        storageBaseUrl: fake.url,
        pollIntervalMs: 100,
        maxPollIntervalMs: 300,
      })
    : new VertexTuner(real ?? {}); // ADC; GOOGLE_CLOUD_LOCATION or us-central1

  try {
    const data = await Dataset.load(new URL("./data/increment.jsonl", import.meta.url).pathname);
    const { train, validation } = data.split({ validationFraction: 0.1, seed: 7 });
    const job = await tuner.tune({
      baseModel,
      dataset: train,
      validation,
      displayName: "Increment",
      hyperparameters: { epochCount: 3, learningRateMultiplier: 1 },
    });
    console.log(`Started ${job.name}`);

    for await (const event of job.events()) {
      if (event.type === "state") {
        console.log(`state: ${event.state} (${job.vertexState ?? "?"})`);
      } else if (event.type === "log") {
        console.log(`${event.level}: ${event.message}`);
      } else if (event.type === "progress" && event.progress.totalSteps !== undefined) {
        const { completedSteps, totalSteps } = event.progress;
        console.log(`steps: ${completedSteps === 0 ? "?" : completedSteps}/${totalSteps}`);
      }
    }

    const model = await job.wait();
    console.log(`Tuned model of ${model.name} (${model.info().state})`);
    // One input seen in training, one held out.
    for (const example of [train.examples[0], validation.examples[0]]) {
      if (example) console.log(`  ${example.input} → ${await model.generate(example.input)}`);
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
