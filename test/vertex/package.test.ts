import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// `tunekit/vertex` from the *built* package, by name, as ESM and as CommonJS.
const root = fileURLToPath(new URL("../..", import.meta.url));
const run = (args: string[]) =>
  execFileSync(process.execPath, args, { cwd: root, encoding: "utf8" }).trim();

const exercise = `
  const tuner = new v.VertexTuner({ project: "p", location: "global", accessToken: "t" });
  let code;
  try { v.parseGcsUri("s3://x", "stagingUri"); } catch (e) { code = e.code; }
  console.log(JSON.stringify({ backend: tuner.backend, baseUrl: tuner.baseUrl, code, state: v.toJobState("JOB_STATE_CANCELLING") }));
`;
const expected = {
  backend: "vertex",
  baseUrl: "https://aiplatform.googleapis.com",
  code: "invalid_option",
  state: "running",
};

describe("tunekit/vertex, built", () => {
  it("has been built (run `npm run build` first)", () => {
    expect(existsSync(`${root}/dist/vertex/index.js`)).toBe(true);
    expect(existsSync(`${root}/dist/vertex/index.cjs`)).toBe(true);
  });

  it("loads with import and with require", () => {
    expect(
      JSON.parse(
        run(["--input-type=module", "-e", `import * as v from "tunekit/vertex"; ${exercise}`]),
      ),
    ).toEqual(expected);
    expect(JSON.parse(run(["-e", `const v = require("tunekit/vertex"); ${exercise}`]))).toEqual(
      expected,
    );
  });

  it("loads neither google-auth-library nor a native addon until ADC is needed", () => {
    const script = `
      const loaded = [];
      const dlopen = process.dlopen;
      process.dlopen = (...args) => { loaded.push(String(args[1])); return dlopen.apply(process, args); };
      const v = require("tunekit/vertex");
      new v.VertexTuner({ project: "p", accessToken: "t" });
      const auth = Object.keys(require.cache).filter((f) => f.includes("google-auth-library"));
      console.log(JSON.stringify({ auth, native: loaded.filter((f) => f.includes("tunekit")) }));
    `;
    expect(JSON.parse(run(["-e", script]))).toEqual({ auth: [], native: [] });
  });
});
