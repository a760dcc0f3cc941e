/**
 * The fallback when no prebuilt addon fits: the packed tunekit installed without its optional
 * dependencies (so without `tunekit-<platform>`). `tunekit/local` must say exactly what to do,
 * and the documented command, `npx tunekit build-native`, must build a working addon from the
 * sources in the package.
 *
 * The build needs cargo and takes minutes; it runs where cargo is installed (as in CI) and
 * unless TUNEKIT_PACKED_SKIP_BUILD is set (CI builds once, on its first Node version).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nativeTarget } from "../../src/local/platform.js";
import { createProject, type Project, packedPackages } from "./helpers.js";

const TARGET = nativeTarget();
const hasCargo = (() => {
  try {
    execFileSync("cargo", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const skipBuild = process.env.TUNEKIT_PACKED_SKIP_BUILD
  ? "TUNEKIT_PACKED_SKIP_BUILD is set (CI builds from source once, on its first Node version)"
  : hasCargo
    ? undefined
    : "cargo is not installed on this machine";

const LOAD = `
  import { demoFiles, loadModel } from "tunekit/local";
  try {
    const model = await loadModel(demoFiles().model);
    const ids = model.tokenize("41");
    console.log(JSON.stringify({ loaded: true, type: model.config.modelType, ids: ids.length }));
  } catch (error) {
    console.log(JSON.stringify({ loaded: false, name: error.name, code: error.code, message: error.message, hint: error.hint }));
  }
`;

let project: Project;

beforeAll(async () => {
  project = await createProject("no-prebuilt", [packedPackages().main], { omitOptional: true });
});

afterAll(() => project?.remove());

describe("without a prebuilt addon", () => {
  it("the prebuilt package is really absent", () => {
    expect(existsSync(join(project.dir, "node_modules", `tunekit-${TARGET}`))).toBe(false);
    expect(existsSync(join(project.dir, "node_modules", "tunekit", "native", "Cargo.toml"))).toBe(
      true,
    );
  });

  it("tunekit/local names the platform, the missing package and the build command", async () => {
    const result = await project.node(["--input-type=module", "-e", LOAD]);
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout) as Record<string, string>;
    expect(outcome).toMatchObject({ loaded: false, name: "NativeLoadError", code: "native_load" });
    expect(outcome.message).toContain(`No tunekit native addon for this platform (${TARGET}`);
    expect(outcome.message).toContain(`"tunekit-${TARGET}"`);
    expect(outcome.message).toContain("--omit=optional");
    expect(outcome.message).toContain("`npx tunekit build-native`");
    expect(outcome.message).toContain("https://rustup.rs");
    expect(outcome.hint).toBe("npx tunekit build-native");
  });

  it("the CLI reports it with exit code 6 and the same advice", async () => {
    const run = await project.npx(["tunekit", "demo"]);
    expect(run.code).toBe(6);
    expect(run.stderr).toContain(`No tunekit native addon for this platform (${TARGET}`);
    expect(run.stderr).toContain("`npx tunekit build-native`");
  });

  it("npx tunekit build-native without Rust says how to get it", async () => {
    const run = await project.npx(["tunekit", "build-native"]);
    expect(run.code).toBe(6);
    expect(run.stderr).toContain("cargo (Rust's build tool) was not found on PATH");
    expect(run.stderr).toContain("https://rustup.rs");
  });

  it.skipIf(skipBuild !== undefined)(
    `npx tunekit build-native builds a working addon from the shipped sources${skipBuild ? ` (skipped: ${skipBuild})` : ""}`,
    async () => {
      // This one step runs with Rust on PATH, as for a user who installed it.
      const withRust = {
        PATH: [join(project.dir, "node_modules", ".bin"), process.env.PATH].join(delimiter),
      };
      const build = await project.npx(["tunekit", "build-native"], withRust, 1_500_000);
      expect(build.code, build.stderr.slice(-4000)).toBe(0);
      const addon = join(
        project.dir,
        "node_modules",
        "tunekit",
        "native",
        `tunekit.${TARGET}.node`,
      );
      expect(build.stdout).toContain(`Built ${addon}`);
      expect(existsSync(addon)).toBe(true);

      // Back to a PATH without Rust: the addon just built is what tunekit/local loads now.
      const result = await project.node(["--input-type=module", "-e", LOAD]);
      expect(JSON.parse(result.stdout)).toMatchObject({ loaded: true, type: "llama" });
      const tuned = await project.npx([
        "tunekit",
        "demo",
        "--epochs",
        "1",
        "--show",
        "0",
        "--out",
        "runs/built",
      ]);
      expect(tuned.code, tuned.stderr).toBe(0);
      expect(existsSync(join(project.dir, "runs/built/adapter_model.safetensors"))).toBe(true);
    },
    1_800_000,
  );
});
