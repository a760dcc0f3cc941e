// The fake Gemini tuning service behind a real HTTP server, driven with plain fetch under Jest.
const { startFakeGeminiServer } = require("tunekit/testing");

const KEY = "test-api-key";
let fake;

beforeAll(async () => {
  fake = await startFakeGeminiServer({ apiKey: KEY, tuningEnabled: true, stepsPerPoll: 10 });
});
afterEach(() => fake.service.reset());
afterAll(() => fake.close());

function api(path, init = {}) {
  return fetch(`${fake.url}${path}`, {
    ...init,
    headers: { "x-goog-api-key": KEY, "content-type": "application/json", ...init.headers },
  });
}

const createBody = {
  displayName: "Increment",
  baseModel: "models/gemini-1.5-flash-001-tuning",
  tuningTask: {
    hyperparameters: { epochCount: 5, batchSize: 4, learningRate: 0.001 },
    trainingData: {
      examples: {
        examples: Array.from({ length: 20 }, (_, i) => ({ textInput: `${i}`, output: `${i + 1}` })),
      },
    },
  },
};

test("a tuning run goes from CREATING to ACTIVE and the tuned model answers", async () => {
  const created = await api("/v1beta/tunedModels?tunedModelId=increment", {
    method: "POST",
    body: JSON.stringify(createBody),
  });
  expect(created.status).toBe(200);
  const operation = await created.json();
  expect(operation.metadata.totalSteps).toBe(25);

  let current;
  do {
    current = await (await api(`/v1/${operation.name}`)).json();
  } while (!current.done);
  expect(current.response.state).toBe("ACTIVE");
  const losses = current.metadata.snapshots.map((s) => s.meanLoss);
  expect([...losses].sort((a, b) => b - a)).toEqual(losses);

  const answer = await api("/v1beta/tunedModels/increment:generateContent", {
    method: "POST",
    body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "41" }] }] }),
  });
  const json = await answer.json();
  // "41" was not in training, so the default responder answers.
  expect(json.candidates[0].content.parts[0].text).toBe("tunedModels/increment says: 41");
});

test("an unknown field is rejected with Google's 400 shape", async () => {
  const response = await api("/v1beta/tunedModels", {
    method: "POST",
    body: JSON.stringify({ ...createBody, epochs: 3 }),
  });
  expect(response.status).toBe(400);
  const { error } = await response.json();
  expect(error.status).toBe("INVALID_ARGUMENT");
  expect(error.details[0]["@type"]).toBe("type.googleapis.com/google.rpc.BadRequest");
});

test("faults: a 429 with Retry-After, then a dropped connection", async () => {
  fake.service.faults.rateLimit({ route: "listTunedModels", retryAfterSeconds: 2 });
  const limited = await api("/v1beta/tunedModels");
  expect(limited.status).toBe(429);
  expect(limited.headers.get("retry-after")).toBe("2");

  fake.service.faults.dropConnection({ route: "listTunedModels" });
  await expect(api("/v1beta/tunedModels")).rejects.toThrow("fetch failed");
  expect((await api("/v1beta/tunedModels")).status).toBe(200);
});

test("a lost create response still creates exactly one model", async () => {
  fake.service.faults.loseResponse();
  const body = JSON.stringify(createBody);
  await expect(
    api("/v1beta/tunedModels?tunedModelId=once", { method: "POST", body }),
  ).rejects.toThrow();
  const retry = await api("/v1beta/tunedModels?tunedModelId=once", { method: "POST", body });
  expect(retry.status).toBe(409);
  expect(fake.service.listTunedModels()).toHaveLength(1);
});

test("a wrong API key gets 403 PERMISSION_DENIED", async () => {
  const response = await api("/v1beta/tunedModels", { headers: { "x-goog-api-key": "wrong" } });
  expect(response.status).toBe(403);
  expect((await response.json()).error.status).toBe("PERMISSION_DENIED");
});
