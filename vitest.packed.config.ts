import { defineConfig } from "vitest/config";

// The packed-package suite (test/packed/): installs the tarballs of `npm run pack:packages`
// into fresh projects and uses them as a user would. Slow (npm installs, tuning), so it runs
// on its own: `npm run test:packed` (and in .ci/run on Node 20, 22 and 24).
export default defineConfig({
  test: {
    include: ["test/packed/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: "forks",
    fileParallelism: false,
  },
});
