import { defineConfig } from "tsup";

// One entry per public subpath. The native addon is never bundled: `tunekit/local`
// loads it lazily at run time.
const library = {
  index: "src/index.ts",
  "gemini/index": "src/gemini/index.ts",
  "vertex/index": "src/vertex/index.ts",
  "local/index": "src/local/index.ts",
  "testing/index": "src/testing/index.ts",
};

export default defineConfig([
  {
    entry: library,
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    target: "node20",
    platform: "node",
    splitting: true,
    shims: true,
    outDir: "dist",
  },
  {
    // The CLI is ESM only; it is run, never imported.
    entry: { "cli/main": "src/cli/main.ts" },
    format: ["esm"],
    sourcemap: true,
    target: "node20",
    platform: "node",
    outDir: "dist",
  },
]);
