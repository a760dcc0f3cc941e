/**
 * Google's JS SDK @google/genai (2.32.0) against the fakes over real HTTP, unchanged. Gemini
 * API: generate, stream, chat and countTokens on a tuned model, a base model, listing tuned
 * models. Vertex AI: `tunings.tune/get/list/cancel` on the SDK's default API version
 * (`v1beta1`) with `epochCount` set (the SDK sends int64 as a JSON number).
 */
import { GoogleGenAI } from "@google/genai";
import { OAuth2Client } from "google-auth-library";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeGeminiServer,
  type FakeVertexServer,
  startFakeGeminiServer,
  startFakeVertexServer,
} from "../../../src/testing/index.js";
import { KEY } from "../helpers.js";

describe("@google/genai on the Gemini API, against the fake", () => {
  let fake: FakeGeminiServer;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    fake = await startFakeGeminiServer({ apiKey: KEY, tuningEnabled: true });
    fake.service.seedTunedModel({
      id: "num",
      displayName: "Numbers",
      examples: [
        { textInput: "3", output: "4" },
        { textInput: "7", output: "8" },
      ],
    });
    ai = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: fake.url } });
  });
  afterAll(() => fake.close());

  it("generates on a tuned model", async () => {
    const response = await ai.models.generateContent({ model: "tunedModels/num", contents: "3" });
    expect(response.text).toBe("4");
    expect(response.usageMetadata?.totalTokenCount).toBeGreaterThan(0);
    expect(fake.service.requests.at(-1)?.path).toBe("/v1beta/tunedModels/num:generateContent");
  });

  it("streams from a tuned model", async () => {
    const chunks: string[] = [];
    for await (const chunk of await ai.models.generateContentStream({
      model: "tunedModels/num",
      contents: "something else entirely",
    })) {
      chunks.push(chunk.text ?? "");
    }
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join("")).toBe("tunedModels/num says: something else entirely");
    expect(fake.service.requests.at(-1)?.query.alt).toBe("sse");
  });

  it("chats with a tuned model", async () => {
    const chat = ai.chats.create({ model: "tunedModels/num" });
    expect((await chat.sendMessage({ message: "3" })).text).toBe("4");
    expect((await chat.sendMessage({ message: "7" })).text).toBe("8");
    expect(chat.getHistory().map((turn) => turn.role)).toEqual(["user", "model", "user", "model"]);
  });

  it("counts tokens on a tuned model", async () => {
    const counted = await ai.models.countTokens({ model: "tunedModels/num", contents: "hello" });
    expect(counted.totalTokens).toBeGreaterThan(0);
    expect(fake.service.requests.at(-1)?.path).toBe("/v1beta/tunedModels/num:countTokens");
  });

  it("generates on a base model and lists tuned models", async () => {
    const response = await ai.models.generateContent({
      model: "gemini-2.5-flash",
      contents: "hi",
      config: { systemInstruction: "Be brief.", temperature: 0 },
    });
    expect(response.text).toBe("models/gemini-2.5-flash says: hi");
    const names: string[] = [];
    for await (const model of await ai.models.list({ config: { queryBase: false } })) {
      names.push(model.name ?? "");
    }
    expect(names).toEqual(["tunedModels/num"]);
  });
});

describe("@google/genai tunings on Vertex AI, against the fake (default API version)", () => {
  const TOKEN = "ya29.fake-vertex-token";
  const TRAIN = "gs://tuning-bucket/train.jsonl";
  let fake: FakeVertexServer;
  let ai: GoogleGenAI;

  beforeAll(async () => {
    fake = await startFakeVertexServer({ accessToken: TOKEN, stepsPerPoll: 0 });
    const lines = Array.from({ length: 16 }, (_, i) =>
      JSON.stringify({
        contents: [
          { role: "user", parts: [{ text: String(i) }] },
          { role: "model", parts: [{ text: String(i + 1) }] },
        ],
      }),
    );
    fake.service.putObject(TRAIN, lines.join("\n"));
    // Credentials without ADC: a client holding a ready access token.
    const authClient = new OAuth2Client();
    authClient.setCredentials({ access_token: TOKEN, expiry_date: Date.now() + 3_600_000 });
    ai = new GoogleGenAI({
      vertexai: true,
      project: "sdk-project",
      location: "us-central1",
      googleAuthOptions: { authClient },
      httpOptions: { baseUrl: fake.url },
    });
  });
  afterAll(() => fake.close());

  it("tune → get → list → cancel, on v1beta1, with epochCount", async () => {
    const job = await ai.tunings.tune({
      baseModel: "gemini-2.5-flash",
      trainingDataset: { gcsUri: TRAIN },
      config: { epochCount: 2, tunedModelDisplayName: "sdk tuned", learningRateMultiplier: 0.5 },
    });
    expect(job.name).toMatch(/^projects\/sdk-project\/locations\/us-central1\/tuningJobs\/\d+$/);
    expect(job.state).toBe("JOB_STATE_PENDING");
    const create = fake.service.requests.find((r) => r.route === "createTuningJob");
    expect(create?.apiVersion).toBe("v1beta1");
    // int64 sent as a JSON number, read as proto3 JSON allows and echoed as a string.
    expect(create?.body).toMatchObject({
      supervisedTuningSpec: { hyperParameters: { epochCount: 2 } },
    });
    expect(fake.service.getJob(job.name as string)).toMatchObject({
      supervisedTuningSpec: { hyperParameters: { epochCount: "2", learningRateMultiplier: 0.5 } },
      tunedModelDisplayName: "sdk tuned",
    });

    fake.service.tick(2);
    const got = await ai.tunings.get({ name: job.name as string });
    expect(got.state).toBe("JOB_STATE_RUNNING");
    expect(got.tuningDataStats?.supervisedTuningDataStats?.tuningStepCount).toBe("4");

    const listed: string[] = [];
    for await (const item of await ai.tunings.list({ config: { pageSize: 5 } })) {
      listed.push(item.name ?? "");
    }
    expect(listed).toEqual([job.name]);

    await ai.tunings.cancel({ name: job.name as string });
    fake.service.tick(1);
    const cancelled = await ai.tunings.get({ name: job.name as string });
    expect(cancelled.state).toBe("JOB_STATE_CANCELLED");
    expect(cancelled.error?.code).toBe(1);
    const versions = new Set(fake.service.requests.map((r) => r.apiVersion));
    expect([...versions]).toEqual(["v1beta1"]);
    expect(fake.service.requests.every((r) => (r.status ?? 0) < 300)).toBe(true);
  });
});
