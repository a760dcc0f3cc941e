/**
 * Google's JS SDK @google/generative-ai (0.24.1, no tuning API of its own) against the fake
 * Gemini API over real HTTP, unchanged: generate, stream, chat and countTokens on a tuned
 * model, generate on a base model, and Google's error shape.
 */
import { GoogleGenerativeAI, GoogleGenerativeAIFetchError } from "@google/generative-ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkRecordedTraffic,
  type FakeGeminiServer,
  startFakeGeminiServer,
} from "../../../src/testing/index.js";
import { createBody, KEY } from "../helpers.js";

describe("@google/generative-ai against the real-HTTP fake", () => {
  let fake: FakeGeminiServer;
  let tunedModel: string;
  const model = (options: { apiVersion?: string } = {}) =>
    new GoogleGenerativeAI(KEY).getGenerativeModel(
      { model: tunedModel },
      { baseUrl: fake.url, ...options },
    );

  beforeAll(async () => {
    fake = await startFakeGeminiServer({ apiKey: KEY, tuningEnabled: true });
    const response = await fetch(`${fake.url}/v1beta/tunedModels?tunedModelId=compat`, {
      method: "POST",
      headers: { "x-goog-api-key": KEY, "content-type": "application/json" },
      body: JSON.stringify(createBody()),
    });
    const operation = (await response.json()) as { metadata: { tunedModel: string } };
    tunedModel = operation.metadata.tunedModel;
    fake.service.completeAll();
  });
  afterAll(() => fake.close());

  it("generates with getGenerativeModel({ model: 'tunedModels/…' }, { baseUrl })", async () => {
    const result = await model().generateContent("3");
    expect(result.response.text()).toBe("4");
    const request = fake.service.requests.at(-1)!;
    expect(request.path).toBe("/v1beta/tunedModels/compat:generateContent");
    expect(request.headers["x-goog-api-key"]).toBe("[redacted]");
    expect(request.status).toBe(200);
  });

  it("streams through streamGenerateContent?alt=sse", async () => {
    const result = await model().generateContentStream("a question never seen in training");
    const chunks: string[] = [];
    for await (const chunk of result.stream) chunks.push(chunk.text());
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join("")).toBe("tunedModels/compat says: a question never seen in training");
    expect((await result.response).text()).toBe(chunks.join(""));
  });

  it("chats: the history travels with each turn, the answer is the last turn's", async () => {
    const chat = model().startChat();
    expect((await chat.sendMessage("3")).response.text()).toBe("4");
    expect((await chat.sendMessage("7")).response.text()).toBe("8");
    const history = await chat.getHistory();
    expect(history.map((turn) => turn.role)).toEqual(["user", "model", "user", "model"]);
    const sent = fake.service.requests.at(-1)?.body as { contents: unknown[] };
    expect(sent.contents).toHaveLength(3);
  });

  it("counts tokens on the tuned model (the SDK wraps the request in generateContentRequest)", async () => {
    const { totalTokens } = await model().countTokens("hello world");
    expect(totalTokens).toBeGreaterThan(0);
    const request = fake.service.requests.at(-1)!;
    expect(request.path).toBe("/v1beta/tunedModels/compat:countTokens");
    expect(request.body).toHaveProperty("generateContentRequest.model", tunedModel);
  });

  it("generates on a base model with a documented deterministic answer", async () => {
    const base = new GoogleGenerativeAI(KEY).getGenerativeModel(
      { model: "gemini-2.5-flash", systemInstruction: "Be brief." },
      { baseUrl: fake.url },
    );
    expect((await base.generateContent("hi")).response.text()).toBe(
      "models/gemini-2.5-flash says: hi",
    );
  });

  it("works on apiVersion v1 too", async () => {
    expect((await model({ apiVersion: "v1" }).generateContent("7")).response.text()).toBe("8");
  });

  it("sends only what the discovery schemas allow (safetySettings, generationConfig included)", () => {
    const accepted = fake.service.requests.filter((entry) => (entry.status ?? 500) < 300);
    expect(checkRecordedTraffic(accepted, { rejectReadOnlyInRequests: false })).toEqual([]);
  });

  it("surfaces the fake's 403 for a wrong key as GoogleGenerativeAIFetchError", async () => {
    const wrong = new GoogleGenerativeAI("wrong").getGenerativeModel(
      { model: tunedModel },
      { baseUrl: fake.url },
    );
    const error = await wrong.generateContent("3").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GoogleGenerativeAIFetchError);
    expect((error as GoogleGenerativeAIFetchError).status).toBe(403);
    expect((error as GoogleGenerativeAIFetchError).errorDetails?.[0]).toMatchObject({
      reason: "API_KEY_INVALID",
    });
  });
});
