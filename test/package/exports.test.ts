import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// These tests exercise the *built* package (dist/) the way users load it: by name,
// through package.json "exports", once as ESM and once as CommonJS.
const root = fileURLToPath(new URL("../..", import.meta.url));

function run(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: "utf8" }).trim();
}

const exercise = `
  const hp = t.parseHyperparameters({ epochCount: 2, learningRate: 0.001 });
  const data = t.Dataset.from([{ input: "1", output: "2" }, { input: "2", output: "3" }]);
  let code;
  try { t.parseHyperparameters({ learningRate: 1, learningRateMultiplier: 1 }); } catch (e) { code = e.code + ":" + (e instanceof t.TunekitError); }
  console.log(JSON.stringify({ hp, size: data.size, code }));
`;
const expected = {
  hp: { epochCount: 2, learningRate: 0.001 },
  size: 2,
  code: "invalid_option:true",
};

describe("the built package", () => {
  it("has been built (run `npm run build` first)", () => {
    expect(existsSync(`${root}/dist/index.js`), "dist/index.js is missing").toBe(true);
    expect(existsSync(`${root}/dist/index.cjs`), "dist/index.cjs is missing").toBe(true);
    expect(existsSync(`${root}/dist/index.d.ts`), "dist/index.d.ts is missing").toBe(true);
  });

  it("loads with import and works", () => {
    const out = run(["--input-type=module", "-e", `import * as t from "tunekit"; ${exercise}`]);
    expect(JSON.parse(out)).toEqual(expected);
  });

  it("loads with require and works", () => {
    const out = run(["-e", `const t = require("tunekit"); ${exercise}`]);
    expect(JSON.parse(out)).toEqual(expected);
  });

  it.each(["tunekit", "tunekit/gemini", "tunekit/vertex", "tunekit/testing"])(
    "importing %s never loads a native addon",
    (specifier) => {
      const script = `
        const loaded = [];
        const dlopen = process.dlopen;
        process.dlopen = (...args) => { loaded.push(String(args[1])); return dlopen.apply(process, args); };
        await import(${JSON.stringify(specifier)});
        console.log(JSON.stringify(loaded.filter((f) => f.includes("tunekit"))));
      `;
      expect(JSON.parse(run(["--input-type=module", "-e", script]))).toEqual([]);
    },
  );
});
