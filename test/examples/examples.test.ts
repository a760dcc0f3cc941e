import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// Every example that needs no network runs here, as a user would run it, against the
// built package (examples import "tunekit", which resolves to dist/).
const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve("tsx/cli");

async function runExample(file: string, env: NodeJS.ProcessEnv = {}) {
  expect(existsSync("dist/index.js"), "run `npm run build` first").toBe(true);
  const cleanEnv = { ...process.env, ...env };
  // No credentials: every remote example must fall back to tunekit's fake services.
  for (const key of ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"])
    delete cleanEnv[key];
  return run(process.execPath, [tsx, file], { env: cleanEnv, timeout: 120_000 });
}

describe("examples", () => {
  it("gemini-tune.ts tunes against the fake service and shows progress", async () => {
    const { stdout } = await runExample("examples/gemini-tune.ts");
    expect(stdout).toContain("using the fake Gemini service");
    expect(stdout).toMatch(/step \d+\/\d+/);
    expect(stdout).toContain("state: succeeded");
  });
});
