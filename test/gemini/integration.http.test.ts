import { afterAll, beforeAll } from "vitest";
import {
  type FakeGeminiServer,
  FakeGeminiService,
  startFakeGeminiServer,
} from "../../src/testing/index.js";
import { API_KEY } from "./helpers.js";
import { geminiIntegrationSuite } from "./integration-suite.js";

const service = new FakeGeminiService({ apiKey: API_KEY, tuningEnabled: true });
let server: FakeGeminiServer;

beforeAll(async () => {
  server = await startFakeGeminiServer({ service });
});
afterAll(() => server.close());

geminiIntegrationSuite("real HTTP on 127.0.0.1", () => ({ service, baseUrl: server.url }));
