/**
 * Messages for local paths that do not exist: "no such directory", with the closest names
 * in the parent directory when there is a likely typo. Pure file-system reads; never loads
 * the native addon.
 */
import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Edit distance between two short names (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(
        substitution,
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * The entries of `path`'s parent directory whose names are close to `path`'s last part,
 * spelled as `path` was (so `models/demo-countin` suggests `models/demo-counting`).
 */
export function similarPaths(path: string): string[] {
  const parent = dirname(path);
  const name = basename(path);
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return [];
  }
  const limit = Math.max(2, Math.floor(name.length / 3));
  return entries
    .map((entry) => ({ entry, d: distance(entry.toLowerCase(), name.toLowerCase()) }))
    .filter(({ d }) => d <= limit)
    .sort((x, y) => x.d - y.d)
    .slice(0, 3)
    .map(({ entry }) => (parent === "." && !path.startsWith("./") ? entry : join(parent, entry)));
}

/** "no such directory runs/x" plus "(did you mean runs/y?)" when a close name exists. */
export function noSuchDirectory(path: string): string {
  const similar = similarPaths(path);
  const hint = similar.length > 0 ? ` (did you mean ${similar.join(" or ")}?)` : "";
  return `no such directory ${path}${hint}`;
}
