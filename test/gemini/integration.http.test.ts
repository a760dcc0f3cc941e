import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeGeminiServer,
  FakeGeminiService,
  startFakeGeminiServer,
} from "../../src/testing/index.js";
import { API_KEY, testTuner } from "./helpers.js";
import { geminiIntegrationSuite } from "./integration-suite.js";

const service = new FakeGeminiService({ apiKey: API_KEY, tuningEnabled: true });
let server: FakeGeminiServer;
const execFileAsync = promisify(execFile);

beforeAll(async () => {
  server = await startFakeGeminiServer({ service });
});
afterAll(() => server.close());

geminiIntegrationSuite("real HTTP on 127.0.0.1", () => ({ service, baseUrl: server.url }));

describe("re-attach after a real process restart", () => {
  it("a job started in another process (which exits at once) is picked up by name", async () => {
    service.stepsPerPoll = 0;
    const script = fileURLToPath(new URL("./fixtures/start-job.ts", import.meta.url));
    const { stdout } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", script, server.url, API_KEY],
      {
        timeout: 20_000,
      },
    );
    const started = JSON.parse(stdout.trim()) as { name: string; state: string };
    expect(started.state).toBe("running");
    expect(started.name).toMatch(/^tunedModels\/restarted-[a-z0-9]{6}\/operations\//);

    service.stepsPerPoll = 5;
    const job = await testTuner({ baseUrl: server.url }).getJob(started.name);
    const model = await job.wait();
    expect(model.info().state).toBe("active");
    expect(service.listTunedModels()).toHaveLength(1);
    service.reset();
  });
});
