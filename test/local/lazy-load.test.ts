/**
 * The addon must load only when `tunekit/local` is used, and a missing addon must say how
 * to build it. Each case runs in a fresh Node process (the addon is cached per process),
 * with `process.dlopen` wrapped to record every native module that gets opened.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");

function run(script: string, env: Record<string, string> = {}): Record<string, unknown> {
  const prelude = `
    const opened = [];
    const dlopen = process.dlopen;
    process.dlopen = function (module, file, ...rest) {
      opened.push(String(file));
      return dlopen.call(this, module, file, ...rest);
    };
    const tunekitAddons = () => opened.filter((f) => f.includes("tunekit"));
  `;
  const child = spawnSync(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", prelude + script],
    { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 },
  );
  const line = child.stdout.trim().split("\n").pop() ?? "";
  if (child.status !== 0 || !line.startsWith("{")) {
    throw new Error(`child failed (${child.status}): ${child.stderr}\n${child.stdout}`);
  }
  return JSON.parse(line) as Record<string, unknown>;
}

describe("lazy loading of the native addon", () => {
  it("importing tunekit, tunekit/gemini and tunekit/local opens no addon; loadModel does", () => {
    const out = run(`
      await import("./src/index.ts");
      await import("./src/gemini/index.ts");
      const local = await import("./src/local/index.ts");
      const afterImport = tunekitAddons().length;
      const model = await local.loadModel("test/fixtures/models/llama-tied-gqa");
      console.log(JSON.stringify({ afterImport, afterLoad: tunekitAddons().length, type: model.config.modelType }));
    `);
    expect(out).toEqual({ afterImport: 0, afterLoad: 1, type: "llama" });
  });

  it("a missing addon is a NativeLoadError that says how to build it", () => {
    const out = run(
      `
      const local = await import("./src/local/index.ts");
      const error = await local.loadModel("test/fixtures/models/llama-tied-gqa").catch((e) => e);
      console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message, opened: tunekitAddons().length }));
    `,
      { TUNEKIT_NATIVE_PATH: join(ROOT, "native", "does-not-exist.node") },
    );
    expect(out.name).toBe("NativeLoadError");
    expect(out.code).toBe("native_load");
    expect(out.message).toContain("npm run build:native");
    expect(out.message).toContain("does-not-exist.node");
    expect(out.opened).toBe(0);
  });
});
