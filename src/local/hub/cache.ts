/**
 * The Hugging Face hub cache, laid out exactly as Python's `huggingface_hub` lays it out,
 * so a model downloaded by either is reused by the other:
 *
 * ```
 * $HF_HUB_CACHE/                       (else $HF_HOME/hub, else ~/.cache/huggingface/hub)
 *   models--org--name/
 *     blobs/<etag>                     file contents, named by ETag (sha256 for LFS files,
 *                                      git blob sha1 for small ones); `<etag>.incomplete`
 *                                      while downloading
 *     refs/<revision>                  the commit hash a branch or tag resolved to (no newline)
 *     snapshots/<commit>/<file>        relative symlink → ../../blobs/<etag>
 * ```
 */
import { randomBytes } from "node:crypto";
import { lstat, mkdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";

/** Environment variables read by tunekit's hub code (a subset of Python's). */
export type HubEnv = Readonly<Record<string, string | undefined>>;

/** The hub's address when neither an option nor `HF_ENDPOINT` says otherwise. */
export const DEFAULT_HUB_ENDPOINT = "https://huggingface.co";

/** A 40-hex-digit git commit id. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** `~` and `~/…` → the home directory, as Python's `expanduser`. */
export function expandUser(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/") || path.startsWith(`~${sep}`)) return join(homedir(), path.slice(2));
  return path;
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === "" ? undefined : value;

/** `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` (Python's rule). */
export function hfHome(env: HubEnv = process.env): string {
  const home = nonEmpty(env.HF_HOME);
  if (home) return resolve(expandUser(home));
  const xdg = nonEmpty(env.XDG_CACHE_HOME);
  return resolve(expandUser(xdg ?? join(homedir(), ".cache")), "huggingface");
}

/** `$HF_HUB_CACHE`, else the legacy `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`. */
export function hubCacheDir(env: HubEnv = process.env): string {
  const explicit = nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE);
  return explicit ? resolve(expandUser(explicit)) : join(hfHome(env), "hub");
}

/**
 * True when `HF_HUB_OFFLINE` (else the older `TRANSFORMERS_OFFLINE`) is `1`, `ON`, `YES` or
 * `TRUE` (any case), as in Python.
 */
export function isOffline(env: HubEnv = process.env): boolean {
  const value = (nonEmpty(env.HF_HUB_OFFLINE) ?? nonEmpty(env.TRANSFORMERS_OFFLINE))
    ?.trim()
    .toUpperCase();
  return value === "1" || value === "ON" || value === "YES" || value === "TRUE";
}

/** `HF_ENDPOINT` without a trailing slash, else the public hub. */
export function hubEndpoint(env: HubEnv = process.env): string {
  return (nonEmpty(env.HF_ENDPOINT) ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, "");
}

/**
 * The access token: `HF_TOKEN`, else the legacy `HUGGING_FACE_HUB_TOKEN`, else the file
 * `huggingface-cli login` writes (`$HF_TOKEN_PATH`, else `$HF_HOME/token`).
 */
export async function hubToken(env: HubEnv = process.env): Promise<string | undefined> {
  const fromEnv = nonEmpty(env.HF_TOKEN) ?? nonEmpty(env.HUGGING_FACE_HUB_TOKEN);
  if (fromEnv) return fromEnv.trim();
  const path = nonEmpty(env.HF_TOKEN_PATH) ?? join(hfHome(env), "token");
  try {
    return nonEmpty(await readFile(expandUser(path), "utf8"))?.trim();
  } catch {
    return undefined;
  }
}

/** `models--org--name`, the folder of one model repository in the cache. */
export function repoFolderName(repo: string): string {
  return ["models", ...repo.split("/")].join("--");
}

/** Paths of one repository inside a cache directory. */
export interface RepoCachePaths {
  /** `<cache>/models--org--name` */
  root: string;
  blobs: string;
  refs: string;
  snapshots: string;
}

export function repoCachePaths(cacheDir: string, repo: string): RepoCachePaths {
  const root = join(cacheDir, repoFolderName(repo));
  return {
    root,
    blobs: join(root, "blobs"),
    refs: join(root, "refs"),
    snapshots: join(root, "snapshots"),
  };
}

/**
 * Python's `_normalize_etag`: drops a weak-validator prefix and the quotes, so the same
 * file has the same blob name whichever client downloaded it.
 */
export function normalizeEtag(etag: string): string {
  let value = etag.trim();
  if (value.startsWith("W/")) value = value.slice(2);
  return value.replace(/^"+|"+$/g, "");
}

/** The commit a revision resolved to in an earlier download, when the cache knows it. */
export async function readRef(
  paths: RepoCachePaths,
  revision: string,
): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const value = (await readFile(join(paths.refs, revision), "utf8")).trim();
    return COMMIT_HASH.test(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `refs/<revision>` (atomically, no trailing newline, as Python does). */
export async function writeRef(
  paths: RepoCachePaths,
  revision: string,
  commit: string,
): Promise<void> {
  if (revision === commit) return;
  const path = join(paths.refs, revision);
  if (!isInside(paths.refs, path)) throw new Error(`revision ${revision} escapes the cache`);
  try {
    if ((await readFile(path, "utf8")) === commit) return;
  } catch {
    // Not written yet.
  }
  await mkdir(dirname(path), { recursive: true });
  await writeAtomic(path, commit);
}

/** Writes a file through a temporary sibling and a rename, so readers never see half of it. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(temp, data);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** True when `child` is `parent` or below it. */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** True when `path` exists (following symlinks: a dangling link does not count). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Size of the file at `path`, or undefined when there is none. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Points `linkPath` at `target` with a relative symlink (Python's choice: the cache can be
 * moved), replacing whatever was there through a temporary link and a rename. Falls back
 * to a copy where symlinks are not allowed.
 */
export async function linkBlob(target: string, linkPath: string): Promise<void> {
  await mkdir(dirname(linkPath), { recursive: true });
  const temp = `${linkPath}.${randomBytes(6).toString("hex")}.tmp`;
  const rel = relative(dirname(linkPath), target);
  try {
    await symlink(rel, temp);
    await rename(temp, linkPath);
  } catch (error) {
    await rm(temp, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "EACCES" && code !== "ENOTSUP") throw error;
    const { copyFile } = await import("node:fs/promises");
    await copyFile(target, temp);
    await rename(temp, linkPath);
  }
}

/** True when `path` is a symlink or file (dangling links count: used to clean them up). */
export async function lexists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}
