/**
 * `LocalTuner` with a hub id as the base model, against the local fake hub: the model is
 * downloaded into the Hugging Face cache, trained, and the adapter (which names the hub id)
 * reopens later offline from the cache alone.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import { ModelLoadError } from "../../src/core/errors.js";
import { LocalTuner } from "../../src/local/index.js";
import { type FakeHub, startFakeHub } from "./hub/fake-hub.js";

const MODEL = join(import.meta.dirname, "..", "fixtures", "models", "llama-tied-gqa");
const FILES = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "model.safetensors",
];
const COMMIT = createHash("sha1").update("tuner-hub").digest("hex");

let hub: FakeHub;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "tunekit-tuner-hub-"));
  hub = await startFakeHub({
    "tiny-org/tiny-llama": {
      refs: { main: COMMIT },
      commits: {
        [COMMIT]: Object.fromEntries(FILES.map((f) => [f, readFileSync(join(MODEL, f))])),
      },
    },
  });
});
afterAll(async () => {
  await hub.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("LocalTuner with a hub id", () => {
  it("downloads into the cache, trains, and reopens the adapter offline", async () => {
    const cacheDir = join(scratch, "hub-cache");
    const downloads: string[] = [];
    const tuner = new LocalTuner({
      hub: {
        cacheDir,
        endpoint: hub.url,
        env: {},
        onProgress: (event) => downloads.push(event.type),
      },
    });
    const outputDir = join(scratch, "run");
    const job = await tuner.tune({
      baseModel: "tiny-org/tiny-llama",
      dataset: Dataset.from([
        { input: "1", output: "2" },
        { input: "2", output: "3" },
      ]),
      hyperparameters: { epochCount: 2, batchSize: 2, learningRate: 1e-3 },
      local: { outputDir, template: "User: {input}\n\nAssistant: " },
    });
    const model = await job.wait();
    expect(downloads.length).toBeGreaterThan(0);
    expect(model.baseModel).toBe("tiny-org/tiny-llama");
    const config = JSON.parse(readFileSync(join(outputDir, "adapter_config.json"), "utf8"));
    expect(config.base_model_name_or_path).toBe("tiny-org/tiny-llama");

    // Later, offline: the base model comes from the cache, no request is made.
    const before = hub.requests.length;
    const offline = new LocalTuner({ hub: { cacheDir, offline: true, env: {} } });
    const reopened = await offline.getModel(outputDir);
    expect(typeof (await reopened.generate("1", { maxOutputTokens: 4 }))).toBe("string");
    expect(hub.requests.length).toBe(before);

    // Offline with an empty cache: a ModelLoadError naming the cache.
    const empty = new LocalTuner({
      hub: { cacheDir: join(scratch, "empty"), offline: true, env: {} },
    });
    await expect(empty.getModel(outputDir)).rejects.toBeInstanceOf(ModelLoadError);
  });
});
