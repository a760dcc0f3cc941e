import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import { createFakeVertexHandlers, FakeVertexService } from "../../src/testing/index.js";
import { TOKEN } from "./helpers.js";
import { vertexIntegrationSuite } from "./integration-suite.js";

const service = new FakeVertexService({ accessToken: TOKEN });
const server = setupServer();

beforeAll(() => {
  server.use(...createFakeVertexHandlers(service));
  server.listen({ onUnhandledRequest: "error" });
});
afterAll(() => server.close());

// The tuner talks to the real hosts (us-central1-aiplatform.googleapis.com, storage.googleapis.com); msw answers.
vertexIntegrationSuite("msw", () => ({ service, baseUrl: undefined, storageBaseUrl: undefined }));
