// A TypeScript consumer of every subpath. The packed-package test type-checks it as
// usage.mts + usage.cts (moduleResolution node16) and as usage.ts (moduleResolution bundler),
// with skipLibCheck off and neither msw nor google-auth-library installed.
import { Dataset, isTunekitError, type TuneRequest, type TuningJob } from "tunekit";
import { GeminiTuner } from "tunekit/gemini";
import { demoFiles, LocalTuner, loadModel } from "tunekit/local";
import {
  createFakeGeminiHandlers,
  FakeGeminiService,
  FakeVertexService,
  startFakeGeminiServer,
} from "tunekit/testing";
import { VertexTuner } from "tunekit/vertex";

export async function tuneTheDemo(): Promise<string> {
  const demo = demoFiles();
  const request: TuneRequest = {
    baseModel: demo.model,
    dataset: await Dataset.load(demo.trainingData),
    hyperparameters: { epochCount: 1, learningRate: 1e-3 },
  };
  const job: TuningJob = await new LocalTuner().tune(request);
  const model = await job.wait();
  const base = await loadModel(demo.model);
  base.dispose();
  return model.generate("41");
}

export async function againstTheFakes(): Promise<string[]> {
  const fake = await startFakeGeminiServer({ tuningEnabled: true });
  const gemini = new GeminiTuner({ apiKey: "test-api-key", baseUrl: fake.url });
  const vertex = new VertexTuner({ project: "p", accessToken: "t", stagingUri: "gs://b/x" });
  const handlers = createFakeGeminiHandlers(new FakeGeminiService());
  await fake.close();
  return [gemini.backend, vertex.backend, String(handlers.length), typeof FakeVertexService];
}

export function describeError(error: unknown): string {
  return isTunekitError(error) ? `${error.code}: ${error.message}` : String(error);
}

// Proves the checker sees tunekit's real types and not `any`: this line must be an error.
// @ts-expect-error a dataset's size is a number
export const notAString: string = Dataset.from([{ input: "1", output: "2" }]).size;
