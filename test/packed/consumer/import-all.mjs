// ESM: every public subpath by name, through the package's "exports".
const subpaths = [
  "tunekit",
  "tunekit/gemini",
  "tunekit/vertex",
  "tunekit/local",
  "tunekit/testing",
];
const found = {};
for (const subpath of subpaths) found[subpath] = Object.keys(await import(subpath)).sort();
console.log(JSON.stringify(found));
