import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The packed-package suite needs the tarballs and runs on its own (vitest.packed.config.ts).
    exclude: [...configDefaults.exclude, "test/packed/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
