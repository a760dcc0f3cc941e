import { readFileSync } from "node:fs";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { InvalidOptionError } from "../../src/core/errors.js";
import {
  createFakeGeminiHandlers,
  type DiscoverySchemas,
  FakeGeminiService,
  validateAgainstSchema,
} from "../../src/testing/index.js";
import { API_KEY, testTuner } from "./helpers.js";

const BASE = "https://generativelanguage.googleapis.com/v1beta";
const MODEL = "tunedModels/shared-model";
const discovery = JSON.parse(
  readFileSync(
    new URL("../fixtures/discovery/generativelanguage-v1beta.discovery.json", import.meta.url),
    "utf8",
  ),
) as { schemas: DiscoverySchemas };

const server = setupServer();
const sent: { method: string; url: string; body: unknown }[] = [];
beforeAll(() => server.listen({ onUnhandledRequest: "error" }));
afterEach(() => {
  for (const request of sent) {
    if (request.body !== undefined) {
      const result = validateAgainstSchema(request.body, "Permission", {
        schemas: discovery.schemas,
        rejectReadOnly: true,
      });
      expect(result.issues).toEqual([]);
    }
  }
  sent.length = 0;
  server.resetHandlers();
});
afterAll(() => server.close());

function record() {
  return http.all(`${BASE}/${MODEL}/permissions*`, async ({ request }) => {
    const text =
      request.method === "GET" || request.method === "DELETE" ? "" : await request.text();
    sent.push({
      method: request.method,
      url: request.url,
      body: text ? JSON.parse(text) : undefined,
    });
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname.endsWith("/permissions")) {
      const token = url.searchParams.get("pageToken");
      return HttpResponse.json(
        token
          ? {
              permissions: [
                { name: `${MODEL}/permissions/p3`, granteeType: "EVERYONE", role: "READER" },
              ],
            }
          : {
              permissions: [
                {
                  name: `${MODEL}/permissions/p1`,
                  granteeType: "USER",
                  emailAddress: "a@x.com",
                  role: "OWNER",
                },
                {
                  name: `${MODEL}/permissions/p2`,
                  granteeType: "GROUP",
                  emailAddress: "g@x.com",
                  role: "WRITER",
                },
              ],
              nextPageToken: "next",
            },
      );
    }
    if (request.method === "DELETE") return HttpResponse.json({});
    return HttpResponse.json({
      name: `${MODEL}/permissions/p9`,
      role: "READER",
      granteeType: "USER",
    });
  });
}

describe("tuned model permissions", () => {
  it("creates a permission for a user, a group or everyone", async () => {
    server.use(record());
    const tuner = testTuner();
    await tuner.permissions.create(MODEL, {
      granteeType: "USER",
      emailAddress: "u@x.com",
      role: "READER",
    });
    await tuner.permissions.create("shared-model", { granteeType: "EVERYONE", role: "READER" });
    expect(sent.map((r) => [r.method, new URL(r.url).pathname, r.body])).toEqual([
      [
        "POST",
        `/v1beta/${MODEL}/permissions`,
        { granteeType: "USER", role: "READER", emailAddress: "u@x.com" },
      ],
      ["POST", `/v1beta/${MODEL}/permissions`, { granteeType: "EVERYONE", role: "READER" }],
    ]);
  });

  it("checks grantee and role before sending", async () => {
    const tuner = testTuner();
    await expect(
      tuner.permissions.create(MODEL, { granteeType: "USER", role: "READER" } as never),
    ).rejects.toThrow(InvalidOptionError);
    await expect(
      tuner.permissions.create(MODEL, {
        granteeType: "EVERYONE",
        emailAddress: "a@x.com",
        role: "READER",
      } as never),
    ).rejects.toThrow(InvalidOptionError);
    await expect(
      tuner.permissions.create(MODEL, {
        granteeType: "USER",
        emailAddress: "a@x.com",
        role: "ADMIN",
      } as never),
    ).rejects.toThrow(InvalidOptionError);
    await expect(tuner.permissions.get("tunedModels/x")).rejects.toThrow(InvalidOptionError);
    expect(sent).toEqual([]);
  });

  it("lists across pages, updates the role with updateMask=role, deletes", async () => {
    server.use(record());
    const tuner = testTuner();
    const roles: string[] = [];
    for await (const permission of tuner.permissions.list(MODEL, { pageSize: 2 }))
      roles.push(String(permission.role));
    expect(roles).toEqual(["OWNER", "WRITER", "READER"]);
    await tuner.permissions.update(`${MODEL}/permissions/p2`, { role: "READER" });
    await tuner.permissions.delete(`${MODEL}/permissions/p2`);
    const tail = sent
      .slice(-2)
      .map((r) => `${r.method} ${new URL(r.url).pathname}${new URL(r.url).search}`);
    expect(tail).toEqual([
      `PATCH /v1beta/${MODEL}/permissions/p2?updateMask=role`,
      `DELETE /v1beta/${MODEL}/permissions/p2`,
    ]);
  });
});

describe("tuner.permissions against the fake Gemini API", () => {
  it("grants, lists, updates, deletes and transfers ownership", async () => {
    const service = new FakeGeminiService({ apiKey: API_KEY, ownerEmail: "me@example.com" });
    server.use(...createFakeGeminiHandlers(service));
    service.seedTunedModel({ id: "shared-model" });
    const permissions = testTuner().permissions;
    const reader = await permissions.create(MODEL, {
      granteeType: "USER",
      emailAddress: "reader@example.com",
      role: "READER",
    });
    expect(reader).toMatchObject({ granteeType: "USER", role: "READER" });
    const all = await permissions.list(MODEL).all();
    expect(all.map((p) => p.role).sort()).toEqual(["OWNER", "READER"]);
    await expect(
      permissions.update(reader.name as string, { role: "WRITER" }),
    ).resolves.toMatchObject({
      role: "WRITER",
    });
    await permissions.transferOwnership(MODEL, "next@example.com");
    const roles = Object.fromEntries(
      (await permissions.list(MODEL).all()).map((p) => [p.emailAddress, p.role]),
    );
    expect(roles).toEqual({
      "me@example.com": "WRITER",
      "reader@example.com": "WRITER",
      "next@example.com": "OWNER",
    });
    await permissions.delete(reader.name as string);
    await expect(permissions.get(reader.name as string)).rejects.toMatchObject({
      code: "not_found",
    });
    await expect(permissions.transferOwnership(MODEL, "nobody")).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
  });
});
