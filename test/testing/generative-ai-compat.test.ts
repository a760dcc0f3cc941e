/**
 * Compatibility proof: @google/generative-ai (the JS SDK named in the mission, no tuning API of
 * its own) can call a tuned model served by the fake, over real HTTP.
 */
import { GoogleGenerativeAI, GoogleGenerativeAIFetchError } from "@google/generative-ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeGeminiServer, startFakeGeminiServer } from "../../src/testing/index.js";
import { createBody, KEY } from "./helpers.js";

describe("@google/generative-ai against the real-HTTP fake", () => {
  let fake: FakeGeminiServer;
  let tunedModel: string;

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
    const model = new GoogleGenerativeAI(KEY).getGenerativeModel(
      { model: tunedModel },
      { baseUrl: fake.url },
    );
    const result = await model.generateContent("3");
    expect(result.response.text()).toBe("4");
    const request = fake.service.requests.at(-1)!;
    expect(request.path).toBe("/v1beta/tunedModels/compat:generateContent");
    expect(request.headers["x-goog-api-key"]).toBe("[redacted]");
    expect(request.status).toBe(200);
  });

  it("streams through streamGenerateContent?alt=sse", async () => {
    const model = new GoogleGenerativeAI(KEY).getGenerativeModel(
      { model: tunedModel },
      { baseUrl: fake.url },
    );
    const result = await model.generateContentStream("a question never seen in training");
    const chunks: string[] = [];
    for await (const chunk of result.stream) chunks.push(chunk.text());
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join("")).toBe("tunedModels/compat says: a question never seen in training");
    expect((await result.response).text()).toBe(chunks.join(""));
  });

  it("works on apiVersion v1 too", async () => {
    const model = new GoogleGenerativeAI(KEY).getGenerativeModel(
      { model: tunedModel },
      { baseUrl: fake.url, apiVersion: "v1" },
    );
    expect((await model.generateContent("7")).response.text()).toBe("8");
  });

  it("surfaces the fake's 403 for a wrong key as GoogleGenerativeAIFetchError", async () => {
    const model = new GoogleGenerativeAI("wrong").getGenerativeModel(
      { model: tunedModel },
      { baseUrl: fake.url },
    );
    const error = await model.generateContent("3").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GoogleGenerativeAIFetchError);
    expect((error as GoogleGenerativeAIFetchError).status).toBe(403);
    expect((error as GoogleGenerativeAIFetchError).errorDetails?.[0]).toMatchObject({
      reason: "API_KEY_INVALID",
    });
  });
});
