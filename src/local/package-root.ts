/**
 * Where tunekit's own files are: the installed package's directory (or the clone's), which
 * holds the generated addon loader, the native sources and the demo model and data.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * @internal The root of the `tunekit` package, found by walking up from this module to a
 * package.json named `tunekit`; works from `src/local/` (tests), `dist/local/` and `dist/`
 * chunks. Falls back to the working directory when no such package.json is found.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      try {
        const name = (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name;
        if (name === "tunekit") return dir;
      } catch {
        // Not ours or unreadable; keep walking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** @internal True in a clone of the repository (contributor scripts present), false in an installed package. */
export function isClone(): boolean {
  return existsSync(join(packageRoot(), "scripts", "build-native.sh"));
}
