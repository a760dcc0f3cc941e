/**
 * Dataset staging: the converted JSONL goes to Cloud Storage through the JSON API, with the
 * same credentials as the Vertex calls, and only after every local check passed.
 *
 * - **media** (`uploadType=media`): one request whose body is streamed from the examples as
 *   they are encoded; a failed attempt re-encodes and resends from the first example.
 * - **resumable** (`uploadType=resumable`): a session, then chunks of `chunkBytes` (a multiple
 *   of 256 KiB). A failed chunk is not resent blindly: tunekit asks the session how many bytes
 *   it has and resends only the rest, so a flaky connection never restarts a large upload.
 * - **auto** (default): the first `chunkBytes` are encoded; if the file ends within them it
 *   goes as one media request, otherwise as a resumable upload. Memory stays at about one
 *   chunk either way.
 */
import type { Dataset } from "../core/dataset/dataset.js";
import { InvalidOptionError, InvalidResponseError } from "../core/errors.js";
import type { VertexApi } from "./api.js";
import { DEFAULT_CHUNK_BYTES, vertexJsonlChunks } from "./dataset.js";
import { gcsUri } from "./names.js";
import type { WireStorageObject } from "./wire.js";

/** What one upload wrote. */
export interface StagedFile {
  /** `gs://bucket/object`. */
  uri: string;
  /** Bytes sent (the object's size). */
  bytes: number;
  examples: number;
  /** How it was sent. */
  mode: "media" | "resumable";
  /** Requests that carried data (1 for media; one per chunk for resumable). */
  requests: number;
}

/** How a dataset is uploaded (see the module comment). */
export type UploadMode = "auto" | "media" | "resumable";

/** JSON Lines media type. */
export const JSONL_CONTENT_TYPE = "application/jsonl";

/** Resumable chunks must be multiples of this (256 KiB). */
export const RESUMABLE_CHUNK_QUANTUM = 256 * 1024;

/** Default resumable chunk, and the size above which `auto` switches to resumable: 8 MiB. */
export const DEFAULT_RESUMABLE_CHUNK_BYTES = 8 * 1024 * 1024;

/** Options of {@link uploadDataset}. */
export interface UploadOptions {
  signal?: AbortSignal | undefined;
  /** @default "auto" */
  mode?: UploadMode;
  /** Resumable chunk size, a multiple of 256 KiB. @default 8 MiB */
  chunkBytes?: number;
}

/** Throws unless `bytes` is a positive multiple of 256 KiB. */
export function assertChunkBytes(bytes: number, path = "uploadChunkBytes"): void {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes % RESUMABLE_CHUNK_QUANTUM !== 0) {
    throw new InvalidOptionError(
      path,
      `${path} must be a positive multiple of 256 KiB (262144 bytes), got ${bytes}`,
    );
  }
}

/** Uploads `dataset` as Vertex JSONL to `gs://{bucket}/{object}`. */
export async function uploadDataset(
  api: VertexApi,
  dataset: Dataset,
  target: { bucket: string; object: string },
  options: UploadOptions = {},
): Promise<StagedFile> {
  const mode = options.mode ?? "auto";
  const chunkBytes = options.chunkBytes ?? DEFAULT_RESUMABLE_CHUNK_BYTES;
  assertChunkBytes(chunkBytes);
  const uri = gcsUri(target.bucket, target.object);
  if (mode === "media") {
    const { object, bytes } = await streamedMedia(api, dataset, target, options.signal);
    return checked({ uri, bytes, examples: dataset.size, mode, requests: 1 }, object);
  }

  const pieces = vertexJsonlChunks(dataset.examples)[Symbol.asyncIterator]();
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let exhausted = false;
  /** Reads pieces until `chunkBytes` are pending or the file ends. */
  const fill = async () => {
    while (!exhausted && pendingBytes < chunkBytes) {
      const next = await pieces.next();
      if (next.done) exhausted = true;
      else {
        pending.push(next.value);
        pendingBytes += next.value.byteLength;
      }
    }
  };
  /** Takes the first `size` pending bytes as one contiguous buffer. */
  const take = (size: number): Uint8Array => {
    const all = Buffer.concat(pending, pendingBytes);
    const head = all.subarray(0, size);
    const rest = all.subarray(size);
    pending = rest.byteLength > 0 ? [rest] : [];
    pendingBytes = rest.byteLength;
    return head;
  };

  await fill();
  if (mode === "auto" && exhausted) {
    // Small enough for one request: send the bytes already encoded.
    const body = take(pendingBytes);
    const object = await api.uploadObject(
      target.bucket,
      target.object,
      { contentType: JSONL_CONTENT_TYPE, data: () => body },
      { signal: options.signal },
    );
    return checked(
      { uri, bytes: body.byteLength, examples: dataset.size, mode: "media", requests: 1 },
      object,
    );
  }

  const session = await api.startResumableUpload(target.bucket, target.object, JSONL_CONTENT_TYPE, {
    signal: options.signal,
  });
  let offset = 0;
  let requests = 0;
  for (;;) {
    await fill();
    const final = exhausted && pendingBytes <= chunkBytes;
    const chunk = take(final ? pendingBytes : chunkBytes);
    requests++;
    const result = await sendChunk(api, session, chunk, offset, final, options.signal);
    offset += chunk.byteLength;
    if (final) {
      if (!result.object) {
        throw new InvalidResponseError(`The resumable upload of ${uri} did not finish`);
      }
      return checked(
        { uri, bytes: offset, examples: dataset.size, mode: "resumable", requests },
        result.object,
      );
    }
  }
}

/**
 * Sends one chunk under the storage client's retry policy. Before a repeat it asks the
 * session how many bytes it holds and resends only what is missing.
 */
function sendChunk(
  api: VertexApi,
  session: string,
  chunk: Uint8Array,
  start: number,
  final: boolean,
  signal: AbortSignal | undefined,
): Promise<{ persisted: number; object?: WireStorageObject }> {
  const total = final ? start + chunk.byteLength : undefined;
  const end = start + chunk.byteLength;
  const storage = api.storage;
  return storage.retrying(
    async (context) => {
      let from = start;
      if (context.attempt > 1) {
        const status = await api.putUploadChunk(session, new Uint8Array(0), 0, total, context, {
          signal,
        });
        if (status.object) return status;
        if (status.persisted < start || status.persisted > end) {
          throw new InvalidResponseError(
            `The resumable upload session holds ${status.persisted} bytes; expected between ${start} and ${end}`,
          );
        }
        if (status.persisted === end && !final) return status;
        from = status.persisted;
      }
      const result = await api.putUploadChunk(
        session,
        chunk.subarray(from - start),
        from,
        total,
        context,
        { signal },
      );
      if (!final && result.persisted !== end) {
        throw new InvalidResponseError(
          `Cloud Storage kept ${result.persisted} bytes of the upload; ${end} were sent`,
        );
      }
      return result;
    },
    {
      method: "PUT",
      path: "upload/storage/v1 (resumable)",
      retry: true,
      signal,
      timeoutMs: api.uploadTimeoutMs,
    },
  );
}

/** A media upload whose body is streamed from the examples (re-encoded for each attempt). */
async function streamedMedia(
  api: VertexApi,
  dataset: Dataset,
  target: { bucket: string; object: string },
  signal: AbortSignal | undefined,
): Promise<{ object: WireStorageObject; bytes: number }> {
  let bytes = 0;
  const object = await api.uploadObject(
    target.bucket,
    target.object,
    {
      contentType: JSONL_CONTENT_TYPE,
      data: () => {
        bytes = 0;
        const chunks = vertexJsonlChunks(dataset.examples, { chunkBytes: DEFAULT_CHUNK_BYTES });
        return (async function* counted() {
          for await (const chunk of chunks) {
            bytes += chunk.byteLength;
            yield chunk;
          }
        })();
      },
    },
    { signal },
  );
  return { object, bytes };
}

function checked(file: StagedFile, object: WireStorageObject): StagedFile {
  if (object.size !== undefined && object.size !== String(file.bytes)) {
    throw new InvalidResponseError(
      `Cloud Storage stored ${object.size} bytes for ${file.uri}, but ${file.bytes} were sent`,
    );
  }
  return file;
}
