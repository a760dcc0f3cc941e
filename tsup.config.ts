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

const shared = {
  entry: library,
  dts: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
  splitting: true,
  shims: true,
  outDir: "dist",
} as const;

export default defineConfig([
  { ...shared, format: ["esm"] },
  {
    ...shared,
    format: ["cjs"],
    // ESM-only dependencies are bundled into the CJS build: `require()` of an ES module
    // returns its namespace, and tsup's interop would then call the namespace as the default
    // export ("(0, import_p_retry.default) is not a function").
    noExternal: ["p-retry", "is-network-error"],
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
