/**
 * Runs the dev-only Python suite (pytest, `test/python/test_*.py`): google-generativeai 0.8.6
 * (REST transport) and google-genai 3.6.1 (Vertex AI tuning) against the fakes, started here
 * in-process so the request log can be checked too. Without Python or those packages the suite
 * is reported as skipped, with the reason in its name.
 */
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FakeGeminiServer,
  type FakeVertexServer,
  startFakeGeminiServer,
  startFakeVertexServer,
} from "../../src/testing/index.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PYTHON = process.env.PYTHON ?? "python3";

/** Why the suite cannot run here, or undefined when it can. */
function missing(): string | undefined {
  try {
    execFileSync(
      PYTHON,
      ["-c", "import pytest, requests, google.generativeai, google.genai, google.oauth2"],
      { stdio: "ignore", timeout: 60_000 },
    );
    return undefined;
  } catch {
    return `${PYTHON} with pytest, google-generativeai and google-genai is not installed (pip install -r test/python/requirements.txt)`;
  }
}

const reason = missing();

describe.skipIf(reason !== undefined)(
  `Google's Python SDKs against the fakes${reason ? ` — skipped: ${reason}` : ""}`,
  () => {
    let gemini: FakeGeminiServer;
    let vertex: FakeVertexServer;

    beforeAll(async () => {
      gemini = await startFakeGeminiServer({ apiKey: "py-key", tuningEnabled: true });
      vertex = await startFakeVertexServer({ accessToken: "py-token", stepsPerPoll: 1 });
    });
    afterAll(async () => {
      await gemini.close();
      await vertex.close();
    });

    it("passes the pytest suite (tutorial flow, update, safety settings, permissions, Vertex tuning)", async () => {
      const { code, output } = await pytest({
        TUNEKIT_FAKE_GEMINI_URL: gemini.url,
        TUNEKIT_FAKE_VERTEX_URL: vertex.url,
        TUNEKIT_FAKE_API_KEY: "py-key",
        TUNEKIT_FAKE_ACCESS_TOKEN: "py-token",
      });
      expect(code, output).toBe(0);
      expect(output).toMatch(/\d+ passed/);
      expect(output).not.toMatch(/skipped|failed|error/i);
    }, 240_000);

    it("was spoken to with integer enums and int64 numbers, and answered in kind", () => {
      const intEnum = gemini.service.requests.filter((r) =>
        (r.query.$alt ?? "").includes("enum-encoding=int"),
      );
      expect(intEnum.length).toBeGreaterThan(5);
      // update_tuned_model sends the whole model back, its state as a number.
      const update = gemini.service.requests.find((r) => r.route === "updateTunedModel");
      expect(update?.status).toBe(200);
      expect(update?.body).toMatchObject({ state: 2 });
      const safety = gemini.service.requests.find(
        (r) =>
          r.route === "generateContent" &&
          Array.isArray((r.body as { safetySettings?: unknown[] }).safetySettings),
      );
      expect(safety?.body).toMatchObject({
        safetySettings: expect.arrayContaining([
          { category: expect.any(Number), threshold: expect.any(Number) },
        ]),
      });
      const vertexCreate = vertex.service.requests.find((r) => r.route === "createTuningJob");
      expect(vertexCreate?.apiVersion).toBe("v1beta1");
      expect(vertexCreate?.status).toBe(200);
    });
  },
);

function pytest(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      PYTHON,
      ["-m", "pytest", "test/python", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}
