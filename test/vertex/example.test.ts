import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// examples/vertex-tune.ts imports "tunekit/vertex" by name, which resolves to dist/.
const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve("tsx/cli");

describe("examples/vertex-tune.ts", () => {
  it("runs against the fake Vertex service when no project or credentials are set", async () => {
    expect(existsSync("dist/vertex/index.js"), "run `npm run build` first").toBe(true);
    const env = { ...process.env };
    for (const key of [
      "GOOGLE_CLOUD_PROJECT",
      "GCLOUD_PROJECT",
      "TUNEKIT_VERTEX_STAGING_URI",
      "GOOGLE_APPLICATION_CREDENTIALS",
    ]) {
      delete env[key];
    }
    const { stdout } = await run(process.execPath, [tsx, "examples/vertex-tune.ts"], {
      env,
      timeout: 120_000,
    });
    expect(stdout).toContain("using the fake Vertex AI service");
    expect(stdout).toMatch(
      /Uploaded 360 examples \(\d+ bytes\) to gs:\/\/example-bucket\/tuning\/tunekit-[a-z0-9]+\/training\.jsonl/,
    );
    expect(stdout).toMatch(/Vertex AI read the training data: 360 examples, \d+ tuning steps/);
    expect(stdout).toContain("state: succeeded (JOB_STATE_SUCCEEDED)");
    expect(stdout).toMatch(
      /Tuned model of projects\/example-project\/locations\/us-central1\/tuningJobs\/\d+ \(active\)/,
    );
  });
});
