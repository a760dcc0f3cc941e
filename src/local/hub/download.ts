/**
 * Downloads one repository file into the hub cache, the way Python's `hf_hub_download`
 * does: a `HEAD` of `/{repo}/resolve/{commit}/{file}` whose headers are read from the
 * hub's own answer (`X-Linked-Etag` — the sha256 of an LFS file — else `ETag`,
 * `X-Linked-Size`, `X-Repo-Commit`), following relative redirects only; then the bytes
 * through `fetch`, resumed with a `Range` request from an existing
 * `blobs/<etag>.incomplete`, reported (bytes per file) and abortable. A blob only gets its
 * final name after its size — and, for LFS files, its sha256 — has been checked, so an
 * interrupted download never leaves a blob that looks complete.
 *
 * (Following the CDN redirect, as `@huggingface/hub`'s `fileDownloadInfo` does, would name
 * LFS blobs after the CDN's ETag instead of the sha256 Python uses.)
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import {
  type FileHandle,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { sleep } from "../../core/abort.js";
import {
  ApiError,
  AuthenticationError,
  ConnectionError,
  InvalidResponseError,
  ModelLoadError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServerError,
  TunekitError,
  toAbortedError,
} from "../../core/errors.js";
import {
  exists,
  fileSize,
  isInside,
  linkBlob,
  normalizeEtag,
  type RepoCachePaths,
} from "./cache.js";

/** Progress of a hub download, reported through `onProgress`. */
export type ModelDownloadEvent =
  | {
      type: "resolved";
      repo: string;
      revision: string;
      commit: string;
      /** The files tunekit will use, in download order. */
      files: readonly string[];
      /** True when nothing was asked of the hub (offline, or the hub was unreachable). */
      fromCache: boolean;
    }
  | { type: "file-start"; file: string; totalBytes: number; resumedFrom: number }
  | { type: "file-progress"; file: string; bytes: number; totalBytes: number }
  | { type: "file-done"; file: string; totalBytes: number; cached: boolean }
  | { type: "warning"; message: string };

/** What a file download needs to know. */
export interface DownloadContext {
  repo: string;
  commit: string;
  paths: RepoCachePaths;
  endpoint: string;
  /** Adds the token (hub origin only) and the abort signal. */
  fetch: typeof fetch;
  signal: AbortSignal | undefined;
  emit(event: ModelDownloadEvent): void;
}

/** Report progress at most every this many bytes (plus once at the end of each file). */
const PROGRESS_EVERY_BYTES = 256 * 1024;

const SHA256 = /^[0-9a-f]{64}$/;
const SAFE_ETAG = /^[A-Za-z0-9._-]+$/;

/** Downloads of the same blob within this process share one transfer. */
const inFlight = new Map<string, Promise<void>>();

function checkRelative(file: string): void {
  if (file === "" || file.startsWith("/") || file.split(/[\\/]/).some((part) => part === "..")) {
    throw new ModelLoadError(`refusing to download ${JSON.stringify(file)}: not a relative path`, {
      path: file,
    });
  }
}

/** Maps `@huggingface/hub` and `fetch` failures onto tunekit's error classes. */
export function toHubError(
  error: unknown,
  what: string,
  signal: AbortSignal | undefined,
): TunekitError {
  if (signal?.aborted) return toAbortedError(signal);
  if (error instanceof TunekitError) return error;
  const shape = (typeof error === "object" && error !== null ? error : {}) as {
    statusCode?: unknown;
    message?: unknown;
    name?: unknown;
  };
  const message = typeof shape.message === "string" ? shape.message : String(error);
  if (typeof shape.statusCode === "number") {
    const info = { httpStatus: shape.statusCode };
    const text = `${what}: ${message}`;
    const options = { cause: error };
    const auth = {
      ...options,
      hint: "Set HF_TOKEN to a token that can read this repository (gated models need access granted on huggingface.co).",
    };
    switch (shape.statusCode) {
      case 401:
        return new AuthenticationError(text, info, auth);
      case 403:
        return new PermissionDeniedError(text, info, auth);
      case 404:
        return new NotFoundError(text, info, {
          ...options,
          hint: "Check the repository id and revision (private repositories also answer 404 without a token).",
        });
      case 429:
        return new RateLimitError(text, info, options);
      default:
        return shape.statusCode >= 500
          ? new ServerError(text, info, options)
          : new ApiError(text, info, options);
    }
  }
  if (error instanceof TypeError || shape.name === "TypeError") {
    return new ConnectionError(`${what}: could not reach the hub (${message})`, {
      cause: error,
      hint: "Check the network, or set HF_HUB_OFFLINE=1 to use only models already in the cache.",
    });
  }
  return new InvalidResponseError(`${what}: ${message}`, { cause: error });
}

/**
 * Makes `snapshots/<commit>/<file>` available, downloading its blob unless the cache
 * already has it. Returns the snapshot path.
 */
export async function downloadFileToCache(ctx: DownloadContext, file: string): Promise<string> {
  checkRelative(file);
  const snapshot = join(ctx.paths.snapshots, ctx.commit);
  const pointer = join(snapshot, file);
  if (!isInside(snapshot, pointer)) {
    throw new ModelLoadError(`refusing to download ${JSON.stringify(file)}: outside the snapshot`);
  }
  if (await exists(pointer)) {
    ctx.emit({
      type: "file-done",
      file,
      totalBytes: (await fileSize(pointer)) ?? 0,
      cached: true,
    });
    return pointer;
  }

  let info: FileMetadata | null;
  try {
    info = await fileMetadata(ctx, file);
  } catch (error) {
    throw toHubError(error, `cannot look up ${ctx.repo}/${file}`, ctx.signal);
  }
  if (info === null) {
    throw new ModelLoadError(`${ctx.repo} has no file ${file} at commit ${ctx.commit}`, {
      path: `${ctx.repo}/${file}`,
    });
  }
  const etag = normalizeEtag(info.etag);
  if (!SAFE_ETAG.test(etag)) {
    throw new InvalidResponseError(`the hub sent an unusable ETag for ${file}: ${info.etag}`);
  }
  const blob = join(ctx.paths.blobs, etag);

  if ((await fileSize(blob)) !== info.size) {
    let pending = inFlight.get(blob);
    if (pending === undefined) {
      const { url, size } = info;
      pending = withBlobLock(ctx, etag, blob, size, () =>
        downloadBlob(ctx, file, url, size, etag, blob),
      ).finally(() => inFlight.delete(blob));
      inFlight.set(blob, pending);
      await pending;
    } else {
      await pending;
    }
    await linkBlob(blob, pointer);
    ctx.emit({ type: "file-done", file, totalBytes: info.size, cached: false });
  } else {
    await linkBlob(blob, pointer);
    ctx.emit({ type: "file-done", file, totalBytes: info.size, cached: true });
  }
  return pointer;
}

/** How often a download waits for another process's lock to go. */
const LOCK_POLL_MS = 250;

/**
 * Runs `download` holding `<cache>/.locks/models--org--name/<etag>.tunekit.lock` (created
 * exclusively, holding the pid), so two processes never write the same `.incomplete` file.
 * A lock whose process is gone is taken over; while another live process holds it, this
 * waits (abortable) and returns as soon as the blob is complete. Python's own lock files
 * (`<etag>.lock`, held with flock) are separate and left alone.
 */
async function withBlobLock(
  ctx: DownloadContext,
  etag: string,
  blob: string,
  size: number,
  download: () => Promise<void>,
): Promise<void> {
  const dir = join(dirname(ctx.paths.root), ".locks", basename(ctx.paths.root));
  await mkdir(dir, { recursive: true });
  const lock = join(dir, `${etag}.tunekit.lock`);
  for (;;) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: "wx" });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (await isStaleLock(lock)) {
      await rm(lock, { force: true });
      continue;
    }
    await sleep(LOCK_POLL_MS, ctx.signal);
    if ((await fileSize(blob)) === size) return;
  }
  try {
    if ((await fileSize(blob)) !== size) await download();
  } finally {
    await rm(lock, { force: true });
  }
}

/** True when the lock's process no longer runs (or the lock is ours: a crash's leftover). */
async function isStaleLock(lock: string): Promise<boolean> {
  let text: string;
  let age: number;
  try {
    [text, age] = await Promise.all([
      readFile(lock, "utf8"),
      stat(lock).then((info) => Date.now() - info.mtimeMs),
    ]);
  } catch {
    return false; // Released meanwhile: try again.
  }
  const pid = Number.parseInt(text, 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) return age > 60_000;
  // Downloads in this process are already shared through `inFlight`.
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** What the hub says about one file. */
export interface FileMetadata {
  /** Normalised: the sha256 for LFS files, the git blob sha1 otherwise. */
  etag: string;
  size: number;
  /** Where the bytes are (the CDN location when the hub redirects there). */
  url: string;
  commit: string | undefined;
}

/** Python's `get_hf_file_metadata`: HEAD, relative redirects followed, headers of the hub's reply. */
export async function fileMetadata(
  ctx: DownloadContext,
  file: string,
): Promise<FileMetadata | null> {
  const path = file.split("/").map(encodeURIComponent).join("/");
  let url = `${ctx.endpoint}/${ctx.repo}/resolve/${encodeURIComponent(ctx.commit)}/${path}`;
  for (let hop = 0; ; hop++) {
    const response = await ctx.fetch(url, {
      method: "HEAD",
      redirect: "manual",
      headers: { "Accept-Encoding": "identity" },
    });
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location !== null) {
      const next = new URL(location, url);
      // A relative redirect (renamed repo) is followed; a CDN redirect ends the lookup.
      if (next.origin === new URL(url).origin && !location.includes("://") && hop < 5) {
        url = next.href;
        continue;
      }
      return metadataFrom(response, next.href, file);
    }
    if (response.status === 404 && response.headers.get("x-error-code") === "EntryNotFound") {
      return null;
    }
    if (!response.ok) {
      const { HubApiError } = await import("@huggingface/hub");
      throw new HubApiError(
        url,
        response.status,
        response.headers.get("x-request-id") ?? undefined,
        `HEAD ${url} answered ${response.status}`,
      );
    }
    return metadataFrom(response, url, file);
  }
}

function metadataFrom(response: Response, url: string, file: string): FileMetadata {
  const headers = response.headers;
  const rawEtag = headers.get("x-linked-etag") ?? headers.get("etag");
  const size = Number(headers.get("x-linked-size") ?? headers.get("content-length") ?? Number.NaN);
  if (rawEtag === null || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidResponseError(
      `the hub sent no ${rawEtag === null ? "ETag" : "size"} for ${file}; is this a Hugging Face hub endpoint?`,
    );
  }
  return { etag: rawEtag, size, url, commit: headers.get("x-repo-commit") ?? undefined };
}

async function hashFile(path: string, hash: Hash, signal: AbortSignal | undefined): Promise<void> {
  for await (const chunk of createReadStream(path, signal ? { signal } : {})) {
    hash.update(chunk as Buffer);
  }
}

async function downloadBlob(
  ctx: DownloadContext,
  file: string,
  url: string,
  size: number,
  etag: string,
  blob: string,
): Promise<void> {
  await mkdir(ctx.paths.blobs, { recursive: true });
  const incomplete = `${blob}.incomplete`;
  let start = (await fileSize(incomplete)) ?? 0;
  if (start > size) {
    await rm(incomplete, { force: true });
    start = 0;
  }
  let hash = SHA256.test(etag) ? createHash("sha256") : undefined;
  try {
    if (hash && start > 0) await hashFile(incomplete, hash, ctx.signal);

    let handle: FileHandle | undefined;
    let received = start;
    try {
      if (start < size || size === 0) {
        const headers: Record<string, string> = { "Accept-Encoding": "identity" };
        if (start > 0) headers.Range = `bytes=${start}-`;
        const response = await ctx.fetch(url, { headers });
        if (!response.ok) {
          const { HubApiError } = await import("@huggingface/hub");
          await response.body?.cancel();
          throw new HubApiError(url, response.status, undefined, `download failed`);
        }
        if (start > 0 && response.status !== 206) {
          // The server ignored the Range header: start again from the first byte.
          start = 0;
          received = 0;
          if (hash) hash = createHash("sha256");
        }
        ctx.emit({ type: "file-start", file, totalBytes: size, resumedFrom: start });
        handle = await open(incomplete, start > 0 ? "a" : "w");
        const reader = response.body?.getReader();
        let reported = received;
        while (reader) {
          const { done, value } = await reader.read();
          if (done) break;
          await handle.write(value);
          hash?.update(value);
          received += value.byteLength;
          if (received > size) break;
          if (received - reported >= PROGRESS_EVERY_BYTES) {
            reported = received;
            ctx.emit({ type: "file-progress", file, bytes: received, totalBytes: size });
          }
        }
        await handle.sync();
      } else {
        ctx.emit({ type: "file-start", file, totalBytes: size, resumedFrom: start });
      }
    } finally {
      await handle?.close();
    }
    ctx.emit({ type: "file-progress", file, bytes: Math.min(received, size), totalBytes: size });

    if (received !== size) {
      // Too short: keep the partial file so the next try resumes; too long: start over.
      if (received > size) await rm(incomplete, { force: true });
      throw new InvalidResponseError(
        `download of ${ctx.repo}/${file} ended at ${received} of ${size} bytes`,
        { hint: "Run the command again: the download resumes where it stopped." },
      );
    }
    if (hash) {
      const digest = hash.digest("hex");
      if (digest !== etag) {
        await rm(incomplete, { force: true });
        throw new InvalidResponseError(
          `download of ${ctx.repo}/${file} is corrupt: sha256 ${digest}, expected ${etag}`,
        );
      }
    }
    await rename(incomplete, blob);
  } catch (error) {
    throw toHubError(error, `cannot download ${ctx.repo}/${file}`, ctx.signal);
  }
}
