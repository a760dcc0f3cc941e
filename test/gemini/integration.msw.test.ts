import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import {
  createFakeGeminiHandlers,
  FakeGeminiService,
  GEMINI_BASE_URL,
} from "../../src/testing/index.js";
import { API_KEY } from "./helpers.js";
import { geminiIntegrationSuite } from "./integration-suite.js";

const service = new FakeGeminiService({ apiKey: API_KEY, tuningEnabled: true });
const server = setupServer();

beforeAll(async () => {
  server.use(...(await createFakeGeminiHandlers(service)));
  server.listen({ onUnhandledRequest: "error" });
});
afterAll(() => server.close());

geminiIntegrationSuite("msw", () => ({ service, baseUrl: GEMINI_BASE_URL }));
