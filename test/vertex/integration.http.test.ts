import { afterAll, beforeAll } from "vitest";
import {
  type FakeVertexServer,
  FakeVertexService,
  startFakeVertexServer,
} from "../../src/testing/index.js";
import { TOKEN } from "./helpers.js";
import { vertexIntegrationSuite } from "./integration-suite.js";

const service = new FakeVertexService({ accessToken: TOKEN });
let server: FakeVertexServer;

beforeAll(async () => {
  server = await startFakeVertexServer({ service });
});
afterAll(() => server.close());

vertexIntegrationSuite("real HTTP on 127.0.0.1", () => ({
  service,
  baseUrl: server.url,
  storageBaseUrl: server.url,
}));
