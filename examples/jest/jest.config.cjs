// Jest example suite for tunekit/testing. Build first, then run from the repository root:
//   npm run build && npx jest --config examples/jest/jest.config.cjs
/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: "node",
  testMatch: ["<rootDir>/**/*.test.cjs"],
  transform: {},
  // What an installed package resolves `tunekit/testing` to; here, the local build.
  moduleNameMapper: { "^tunekit/testing$": "<rootDir>/../../dist/testing/index.cjs" },
};
