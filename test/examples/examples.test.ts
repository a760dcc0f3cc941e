import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// Every example that needs no network runs here, as a user would run it, against the
// built package (examples import "tunekit", which resolves to dist/).
const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve("tsx/cli");
/** Each example is a whole tune: about a minute on 2 busy cores, far over vitest's 30 s default. */
const EXAMPLE_TIMEOUT_MS = 300_000;

async function runExample(file: string, env: NodeJS.ProcessEnv = {}, args: string[] = []) {
  expect(existsSync("dist/index.js"), "run `npm run build` first").toBe(true);
  const cleanEnv = { ...process.env, ...env };
  // No credentials: every remote example must fall back to tunekit's fake services.
  for (const key of ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"])
    delete cleanEnv[key];
  return run(process.execPath, [tsx, file, ...args], {
    env: cleanEnv,
    timeout: EXAMPLE_TIMEOUT_MS - 10_000,
  });
}

describe("examples", { timeout: EXAMPLE_TIMEOUT_MS }, () => {
  it("gemini-tune.ts tunes against the fake service and shows progress", async () => {
    const { stdout } = await runExample("examples/gemini-tune.ts");
    expect(stdout).toContain("using the fake Gemini service");
    expect(stdout).toMatch(/step \d+\/\d+/);
    expect(stdout).toContain("state: succeeded");
  });

  it("local-tune.ts tunes the demo model on this machine and shows answers before and after", async () => {
    const output = mkdtempSync(join(tmpdir(), "tunekit-example-local-"));
    try {
      const { stdout } = await runExample("examples/local-tune.ts", {
        TUNEKIT_EXAMPLES: "40",
        TUNEKIT_EPOCHS: "1",
        TUNEKIT_OUTPUT: join(output, "run"),
      });
      expect(stdout).toContain("Before tuning:");
      expect(stdout).toMatch(/step 5\/5 {2}loss \d/);
      expect(stdout).toContain("state: succeeded");
      expect(stdout).toContain("After tuning");
      expect(stdout).toContain(`Adapter directory: ${join(output, "run")}`);
      expect(existsSync(join(output, "run", "adapter_model.safetensors"))).toBe(true);
    } finally {
      rmSync(output, { recursive: true, force: true });
    }
  });

  it("seed-recipe.ts runs the seed's recipe through LocalTuner (one step with --quick)", async () => {
    const output = mkdtempSync(join(tmpdir(), "tunekit-example-seed-"));
    try {
      const out = join(output, "run");
      const { stdout } = await runExample("examples/seed-recipe.ts", {}, ["--quick", "--out", out]);
      expect(stdout).toMatch(/step 1\/1 {2}loss \d/);
      expect(stdout).toContain("state: succeeded");
      const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
      expect(config).toMatchObject({ r: 8, lora_alpha: 32, lora_dropout: 0.1 });
      expect([...config.target_modules].sort()).toEqual([
        "down_proj",
        "gate_proj",
        "k_proj",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
      ]);
    } finally {
      rmSync(output, { recursive: true, force: true });
    }
  });

  it("one-code-two-backends.ts runs the same function on both backends", async () => {
    const output = mkdtempSync(join(tmpdir(), "tunekit-example-both-"));
    try {
      for (const backend of ["gemini", "local"]) {
        const { stdout } = await runExample("examples/one-code-two-backends.ts", {
          TUNEKIT_BACKEND: backend,
          TUNEKIT_OUTPUT_ROOT: output,
        });
        expect(stdout).toContain(`[${backend}] state: succeeded`);
        expect(stdout).toContain(`[${backend}] 9 → 10`);
      }
    } finally {
      rmSync(output, { recursive: true, force: true });
    }
  });
});
