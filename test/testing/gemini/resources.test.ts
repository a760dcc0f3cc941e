/**
 * The fake Gemini API's permissions, transferOwnership, countTokens and base-model generation,
 * and its proto3 JSON wire format (integer enums in and out).
 */
import { describe, expect, it } from "vitest";
import { checkRecordedTraffic, FakeGeminiService } from "../../../src/testing/index.js";
import { call, expectAllResponsesValid, KEY } from "../helpers.js";

// biome-ignore lint/suspicious/noExplicitAny: the tests read JSON responses field by field.
type Json = Record<string, any>;

function withModel(options: ConstructorParameters<typeof FakeGeminiService>[0] = {}) {
  const service = new FakeGeminiService({ tuningEnabled: true, ...options });
  service.seedTunedModel({ id: "shared", examples: [{ textInput: "3", output: "4" }] });
  return service;
}

describe("permissions", () => {
  it("starts with the owner, grants, lists in pages, updates the role and deletes", async () => {
    const service = withModel({ ownerEmail: "me@example.com" });
    const base = "/v1beta/tunedModels/shared/permissions";
    const start = (await call(service, "GET", base)).json as Json;
    expect(start.permissions).toEqual([
      {
        name: expect.stringMatching(/^tunedModels\/shared\/permissions\/[a-z][a-z0-9]{11}$/),
        granteeType: "USER",
        emailAddress: "me@example.com",
        role: "OWNER",
      },
    ]);
    const reader = await call(service, "POST", base, {
      granteeType: "USER",
      emailAddress: "a@example.com",
      role: "READER",
    });
    expect(reader.status).toBe(200);
    const everyone = await call(service, "POST", base, { grantee_type: 3, role: 3 });
    expect(everyone.json).toMatchObject({ granteeType: "EVERYONE", role: "READER" });
    expect((everyone.json as Json).emailAddress).toBeUndefined();

    const page = (await call(service, "GET", `${base}?pageSize=2`)).json as Json;
    expect(page.permissions).toHaveLength(2);
    const rest = (await call(service, "GET", `${base}?pageSize=2&pageToken=${page.nextPageToken}`))
      .json as Json;
    expect(rest.permissions).toHaveLength(1);
    expect(rest.nextPageToken).toBeUndefined();

    const name = (reader.json as Json).name as string;
    const patched = await call(service, "PATCH", `/v1beta/${name}?updateMask=role`, {
      role: "WRITER",
    });
    expect(patched.json).toMatchObject({ name, role: "WRITER", emailAddress: "a@example.com" });
    expect((await call(service, "GET", `/v1beta/${name}`)).json).toMatchObject({ role: "WRITER" });
    expect((await call(service, "DELETE", `/v1beta/${name}`)).status).toBe(200);
    expect((await call(service, "GET", `/v1beta/${name}`)).status).toBe(404);
    // The replies are canonical (the EVERYONE grant above was sent gapic-style: proto names, numbers).
    expect(checkRecordedTraffic(service.requests, { requests: false })).toEqual([]);
  });

  it("refuses what the API refuses: missing email, email for EVERYONE, OWNER grants, masks other than role", async () => {
    const service = withModel();
    const base = "/v1beta/tunedModels/shared/permissions";
    expect(
      (await call(service, "POST", base, { granteeType: "USER", role: "READER" })).status,
    ).toBe(400);
    expect(
      (
        await call(service, "POST", base, {
          granteeType: "EVERYONE",
          emailAddress: "a@b.c",
          role: "READER",
        })
      ).status,
    ).toBe(400);
    const owner = await call(service, "POST", base, {
      granteeType: "USER",
      emailAddress: "a@b.c",
      role: "OWNER",
    });
    expect((owner.json as Json).error.message).toMatch(/transferOwnership/);
    const granted = (
      await call(service, "POST", base, {
        granteeType: "GROUP",
        emailAddress: "g@b.c",
        role: "READER",
      })
    ).json as Json;
    expect(
      (
        await call(service, "POST", base, {
          granteeType: "GROUP",
          emailAddress: "g@b.c",
          role: "WRITER",
        })
      ).status,
    ).toBe(409);
    const badMask = await call(
      service,
      "PATCH",
      `/v1beta/${granted.name}?updateMask=emailAddress`,
      {
        emailAddress: "x@b.c",
      },
    );
    expect(badMask.status).toBe(400);
    expect((await call(service, "GET", "/v1beta/tunedModels/none/permissions")).status).toBe(404);
  });

  it("transfers ownership: the new owner is the only OWNER, the old one becomes a WRITER", async () => {
    const service = withModel({ ownerEmail: "old@example.com" });
    const moved = await call(service, "POST", "/v1beta/tunedModels/shared:transferOwnership", {
      emailAddress: "new@example.com",
    });
    expect(moved).toMatchObject({ status: 200, json: {} });
    const roles = Object.fromEntries(
      (service.listPermissions("shared") ?? []).map((p) => [p.emailAddress, p.role]),
    );
    expect(roles).toEqual({ "old@example.com": "WRITER", "new@example.com": "OWNER" });
    expect(
      (await call(service, "POST", "/v1beta/tunedModels/shared:transferOwnership", {})).status,
    ).toBe(400);
  });
});

describe("countTokens and base-model generation", () => {
  it("counts tokens of contents or of a whole generateContentRequest, on tuned and base models", async () => {
    const service = withModel();
    const contents = [{ role: "user", parts: [{ text: "hello world" }] }];
    const tuned = await call(service, "POST", "/v1beta/tunedModels/shared:countTokens", {
      contents,
    });
    const wrapped = await call(service, "POST", "/v1/tunedModels/shared:countTokens", {
      generateContentRequest: { model: "tunedModels/shared", contents },
    });
    const base = await call(service, "POST", "/v1beta/models/gemini-2.5-flash:countTokens", {
      contents,
    });
    expect((tuned.json as Json).totalTokens).toBeGreaterThan(0);
    expect(wrapped.json).toEqual(tuned.json);
    expect(base.json).toEqual(tuned.json);
    expect(
      (await call(service, "POST", "/v1beta/tunedModels/none:countTokens", { contents })).status,
    ).toBe(404);
    expectAllResponsesValid(service);
  });

  it("answers a base model deterministically: '<model> says: <last user text>', streamed too", async () => {
    const service = new FakeGeminiService();
    const body = {
      systemInstruction: { parts: [{ text: "Be brief." }] },
      contents: [
        { role: "user", parts: [{ text: "first" }] },
        { role: "model", parts: [{ text: "ok" }] },
        { role: "user", parts: [{ text: "second" }] },
      ],
    };
    const once = (
      await call(service, "POST", "/v1beta/models/gemini-2.5-flash:generateContent", body)
    ).json as Json;
    expect(once.candidates[0].content.parts[0].text).toBe("models/gemini-2.5-flash says: second");
    expect(once.candidates[0].finishReason).toBe("STOP");
    const streamed = await call(
      service,
      "POST",
      "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
      body,
    );
    expect(streamed.headers["content-type"]).toBe("text/event-stream");
    expect(streamed.text.split("\r\n\r\n").filter(Boolean).length).toBeGreaterThan(1);
    expect(
      (await call(service, "POST", "/v1beta/models/unknown:generateContent", body)).status,
    ).toBe(404);
    expectAllResponsesValid(service);
  });
});

describe("the proto3 JSON wire format", () => {
  it("takes integer enums and answers with integer enums for $alt=json;enum-encoding=int", async () => {
    const service = withModel();
    const got = (
      await call(service, "GET", "/v1beta/tunedModels/shared?$alt=json;enum-encoding=int")
    ).json as Json;
    expect(got.state).toBe(2); // ACTIVE
    // What gapic REST clients send back on update: the whole model, enums as numbers.
    const updated = await call(
      service,
      "PATCH",
      "/v1beta/tunedModels/shared?updateMask=description&$alt=json;enum-encoding=int",
      { ...got, description: "new" },
    );
    expect(updated.status).toBe(200);
    expect((updated.json as Json).state).toBe(2);
    expect(service.getTunedModel("shared")).toMatchObject({ description: "new", state: "ACTIVE" });
    const generated = await call(
      service,
      "POST",
      "/v1beta/tunedModels/shared:generateContent?$alt=json;enum-encoding=int",
      {
        contents: [{ role: "user", parts: [{ text: "3" }] }],
        safetySettings: [{ category: 7, threshold: 4 }],
      },
    );
    expect((generated.json as Json).candidates[0]).toMatchObject({
      content: { parts: [{ text: "4" }] },
      finishReason: 1, // STOP
    });
    // The log keeps the canonical form (names), whatever went on the wire.
    expect(service.requests.at(-1)?.response).toMatchObject({
      candidates: [{ finishReason: "STOP" }],
    });
  });

  it("rejects what Google rejects: unknown fields and query parameters, wrong types", async () => {
    const service = withModel();
    const unknown = await call(service, "POST", "/v1beta/tunedModels/shared:generateContent", {
      contents: [{ parts: [{ text: "3" }] }],
      temperature: 0.5,
    });
    expect((unknown.json as Json).error).toMatchObject({
      code: 400,
      status: "INVALID_ARGUMENT",
      message: `Invalid JSON payload received. Unknown name "temperature": Cannot find field.`,
    });
    const query = await call(service, "GET", "/v1beta/tunedModels?pageSize=2&page=3");
    expect((query.json as Json).error.message).toMatch(
      /Unknown name "page": Cannot bind query parameter/,
    );
    const wrong = await call(service, "GET", "/v1beta/tunedModels?pageSize=two");
    expect((wrong.json as Json).error.message).toBe(
      `Invalid value at 'page_size' (TYPE_INT32), "two"`,
    );
    expect(
      (
        await call(service, "GET", "/v1beta/tunedModels?pageSize=2&key=x", undefined, {
          "x-goog-api-key": KEY,
        })
      ).status,
    ).toBe(200);
  });
});
