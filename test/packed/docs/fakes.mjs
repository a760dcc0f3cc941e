// Preloaded into every docs sample (node --import): Google's endpoints are answered by
// tunekit's own fakes through msw, so samples written for the real services run offline.
// Jobs complete on their first status poll; Application Default Credentials get a token
// from a faked OAuth endpoint.
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import {
  createFakeGeminiHandlers,
  createFakeVertexHandlers,
  FakeGeminiService,
  FakeVertexService,
} from "tunekit/testing";

const gemini = new FakeGeminiService({
  apiKey: null,
  tuningEnabled: true,
  stepsPerPoll: 1_000_000,
});
const vertex = new FakeVertexService({ accessToken: null, stepsPerPoll: 1_000_000 });
const oauth = http.post("https://oauth2.googleapis.com/token", () =>
  HttpResponse.json({ access_token: "test-access-token", expires_in: 3600, token_type: "Bearer" }),
);
setupServer(oauth, ...createFakeGeminiHandlers(gemini), ...createFakeVertexHandlers(vertex)).listen(
  {
    onUnhandledRequest: "bypass",
  },
);
