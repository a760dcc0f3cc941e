import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  homepage: string;
  repository: { url: string };
};
const readme = readFileSync(join(ROOT, "README.md"), "utf8");
/** Every markdown link target in the README (code spans and blocks excluded). */
const links = [...readme.replace(/```[\s\S]*?```/g, "").matchAll(/\]\(([^)\s]+)\)/g)].map(
  (m) => m[1] ?? "",
);

describe("README on the npm registry page", () => {
  const repository = manifest.repository.url.replace(/^git\+/, "").replace(/\.git$/, "");

  it("package.json names the repository and the homepage", () => {
    expect(repository).toMatch(/^https:\/\/github\.com\/[\w-]+\/[\w.-]+$/);
    expect(manifest.homepage).toBe(`${repository}#readme`);
  });

  it("links only to absolute URLs or anchors (the package holds no docs/, bench/ or src/)", () => {
    expect(links.length).toBeGreaterThan(5);
    expect(links.filter((link) => !/^(https?:\/\/|#)/.test(link))).toEqual([]);
  });

  it("links into the repository name files that exist", () => {
    const prefix = `${repository}/blob/main/`;
    const missing = links
      .filter((link) => link.startsWith(prefix))
      .map((link) => link.slice(prefix.length).split("#")[0] ?? "")
      .filter((file) => !existsSync(join(ROOT, file)));
    expect(missing).toEqual([]);
  });
});
