/**
 * `npm install tunekit` as a user gets it: the packed tunekit and this platform's prebuilt
 * addon package installed into a fresh project, on a machine without Rust, then used through
 * every entry point — ESM, CommonJS, the local backend, the CLI and TypeScript.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, sep } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nativeTarget } from "../../src/local/platform.js";
import { consumerFile, createProject, type Project, packedPackages, pinned } from "./helpers.js";

const SUBPATHS = [
  "tunekit",
  "tunekit/gemini",
  "tunekit/vertex",
  "tunekit/local",
  "tunekit/testing",
];
/** One export each subpath must have, whatever else it exports. */
const EXPECTED = {
  tunekit: "Dataset",
  "tunekit/gemini": "GeminiTuner",
  "tunekit/vertex": "VertexTuner",
  "tunekit/local": "LocalTuner",
  "tunekit/testing": "FakeGeminiService",
};

let project: Project;

beforeAll(async () => {
  const { main, addon } = packedPackages();
  project = await createProject("install", [
    main,
    addon,
    pinned("typescript"),
    pinned("@types/node"),
  ]);
  for (const file of ["import-all.mjs", "require-all.cjs", "tune-fifty.mjs"]) {
    project.write(file, consumerFile(file));
  }
  project.write(
    "data.jsonl",
    readFileSync(join(project.dir, "node_modules/tunekit/examples/data/increment.jsonl"), "utf8")
      .split("\n")
      .slice(0, 50)
      .join("\n"),
  );
});

afterAll(() => project?.remove());

describe(`the packed package on Node ${process.versions.node}`, () => {
  it("is installed without Rust: cargo is not on the project's PATH", async () => {
    const which = await project.node([
      "-e",
      "require('child_process').execFileSync('cargo', ['--version'])",
    ]);
    expect(which.code).not.toBe(0);
    expect(which.stderr).toMatch(/ENOENT/);
    // The prebuilt addon package of this platform was installed from its tarball.
    expect(existsSync(join(project.dir, "node_modules", `tunekit-${nativeTarget()}`))).toBe(true);
  });

  it("loads every subpath with import (ESM)", async () => {
    const result = await project.node(["import-all.mjs"]);
    expect(result.code, result.stderr).toBe(0);
    const exports = JSON.parse(result.stdout) as Record<string, string[]>;
    expect(Object.keys(exports)).toEqual(SUBPATHS);
    for (const [subpath, name] of Object.entries(EXPECTED))
      expect(exports[subpath]).toContain(name);
  });

  it("loads every subpath with require (CommonJS), with the same exports", async () => {
    const [esm, cjs] = await Promise.all([
      project.node(["import-all.mjs"]),
      project.node(["require-all.cjs"]),
    ]);
    expect(cjs.code, cjs.stderr).toBe(0);
    expect(JSON.parse(cjs.stdout)).toEqual(JSON.parse(esm.stdout));
  });

  it("LocalTuner tunes the shipped demo model on 50 rows and generates, with the prebuilt addon", async () => {
    const result = await project.node(["tune-fifty.mjs", join(project.dir, "runs", "fifty")]);
    expect(result.code, result.stderr).toBe(0);
    const run = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(run.state).toBe("succeeded");
    expect(run.completedSteps).toBe(14); // ceil(50 / 8) steps × 2 epochs
    expect(run.lastLoss as number).toBeLessThan(run.firstLoss as number);
    expect(typeof run.text).toBe("string");
    expect(existsSync(join(run.adapter as string, "adapter_model.safetensors"))).toBe(true);
    expect(run.demoModel).toBe(
      join(project.dir, "node_modules", "tunekit", "models", "demo-counting"),
    );
    expect(run.addon as string).toContain(`${sep}node_modules${sep}tunekit-`);
  });

  it("npx tunekit --help lists the commands", async () => {
    const help = await project.npx(["tunekit", "--help"]);
    expect(help.code, help.stderr).toBe(0);
    for (const command of ["validate", "tune", "generate", "demo", "build-native"]) {
      expect(help.stdout).toContain(`  ${command} `);
    }
  });

  it("npx tunekit validate checks a dataset", async () => {
    const result = await project.npx(["tunekit", "validate", "data.jsonl", "--for", "local"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/50 examples/);
  });

  it("npx tunekit tune --backend local tunes, and generate answers with the adapter", async () => {
    const model = join(project.dir, "node_modules", "tunekit", "models", "demo-counting");
    const tune = await project.npx([
      "tunekit",
      "tune",
      "data.jsonl",
      "--backend",
      "local",
      "--model",
      model,
      "--epochs",
      "2",
      "--learning-rate",
      "1e-3",
      "--out",
      "runs/cli",
    ]);
    expect(tune.code, tune.stderr).toBe(0);
    expect(existsSync(join(project.dir, "runs/cli/adapter_model.safetensors"))).toBe(true);
    const answer = await project.npx(["tunekit", "generate", "runs/cli", "41"]);
    expect(answer.code, answer.stderr).toBe(0);
    expect(answer.stdout.trim()).not.toBe("");
  });

  it("npx tunekit demo runs the quick start offline and held-out answers improve", async () => {
    const demo = await project.npx(["tunekit", "demo", "--out", "runs/demo"], {}, 280_000);
    expect(demo.code, demo.stderr).toBe(0);
    const match = /Held-out exact match: (\d+)% → (\d+)%/.exec(demo.stdout);
    expect(match, demo.stdout).not.toBeNull();
    expect(Number(match?.[2])).toBeGreaterThanOrEqual(90);
    expect(Number(match?.[2])).toBeGreaterThan(Number(match?.[1]) + 50);
  });

  it.each([
    ["node16", "tsconfig.node16.json", { "usage.mts": "usage.ts", "usage.cts": "usage.ts" }],
    ["bundler", "tsconfig.bundler.json", { "usage.ts": "usage.ts" }],
  ] as const)(
    "a TypeScript consumer type-checks under moduleResolution %s (no msw, no google-auth-library)",
    async (_mode, config, files) => {
      for (const [target, source] of Object.entries(files))
        project.write(target, consumerFile(source));
      project.write(config, consumerFile(config));
      expect(existsSync(join(project.dir, "node_modules", "msw"))).toBe(false);
      expect(existsSync(join(project.dir, "node_modules", "google-auth-library"))).toBe(false);
      const tsc = await project.npx(["tsc", "-p", config]);
      expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);
    },
  );
});
