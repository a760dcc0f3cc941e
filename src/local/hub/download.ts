/**
 * Downloads one repository file into the hub cache: metadata through `@huggingface/hub`
 * (`fileDownloadInfo`: size, ETag, final URL), bytes through `fetch` so the transfer can be
 * resumed (a `Range` request from an existing `blobs/<etag>.incomplete`, as Python does),
 * reported (bytes per file) and aborted. A blob only gets its final name after its size —
 * and, for LFS files, its sha256 — has been checked, so an interrupted download never
 * leaves a blob that looks complete.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, mkdir, open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
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

  const { fileDownloadInfo } = await import("@huggingface/hub");
  let info: Awaited<ReturnType<typeof fileDownloadInfo>>;
  try {
    info = await fileDownloadInfo({
      repo: { type: "model", name: ctx.repo },
      path: file,
      revision: ctx.commit,
      hubUrl: ctx.endpoint,
      fetch: ctx.fetch,
    });
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
      pending = downloadBlob(ctx, file, info.url, info.size, etag, blob).finally(() =>
        inFlight.delete(blob),
      );
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
