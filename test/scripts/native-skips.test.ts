import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// A Rust test that cannot run here must be counted as ignored by cargo (decided when the
// tests are built, see native/core/build.rs), never pass after printing "skipped".
const ROOTS = ["native/core/src", "native/core/tests", "native/node/src"];

function rustFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return rustFiles(path);
    return entry.name.endsWith(".rs") ? [path] : [];
  });
}

describe("Rust tests that need an optional input", () => {
  const files = ROOTS.flatMap(rustFiles).map((path) => ({
    path,
    text: readFileSync(path, "utf8"),
  }));

  it("are found", () => {
    expect(files.length).toBeGreaterThan(20);
  });

  it("never return early with a 'skipped' message", () => {
    const offenders = files.flatMap(({ path, text }) => {
      const found: string[] = [];
      if (/eprintln!\(\s*"[^"]*skip/i.test(text)) found.push(`${path}: prints "skip…"`);
      const early =
        /let\s+(?:Ok|Some)\([^)]*\)\s*=\s*std::env::var(?:_os)?\([^)]*\)(?:\.ok\(\))?\s*else\s*\{[^}]*return/;
      if (early.test(text)) found.push(`${path}: returns early when an env var is unset`);
      return found;
    });
    expect(offenders).toEqual([]);
  });

  it("say why they are ignored", () => {
    const bare = files.filter(({ text }) => /#\[ignore\]/.test(text)).map(({ path }) => path);
    expect(bare).toEqual([]);
    const reasons = files.flatMap(({ text }) => [...text.matchAll(/ignore = "([^"]+)"/g)]);
    expect(reasons.length).toBeGreaterThanOrEqual(5);
  });
});
