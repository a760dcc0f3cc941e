import { defineConfig } from "tsup";

// One entry per public subpath, plus the CLI. The native addon is never bundled:
// `tunekit/local` loads it lazily at run time.
const entry = {
  index: "src/index.ts",
  "gemini/index": "src/gemini/index.ts",
  "local/index": "src/local/index.ts",
  "testing/index": "src/testing/index.ts",
};

export default defineConfig({
  entry,
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
  splitting: true,
  shims: true,
  outDir: "dist",
});
