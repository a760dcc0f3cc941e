/**
 * Dataset staging: the converted JSONL is streamed to Cloud Storage through the JSON API's
 * media upload (`POST upload/storage/v1/b/{bucket}/o?uploadType=media&name=…`), with the same
 * credentials as the Vertex calls. Called only after every local check passed.
 */
import type { Dataset } from "../core/dataset/dataset.js";
import { InvalidResponseError } from "../core/errors.js";
import type { VertexApi } from "./api.js";
import { vertexJsonlChunks } from "./dataset.js";
import { gcsUri } from "./names.js";

/** What one upload wrote. */
export interface StagedFile {
  /** `gs://bucket/object`. */
  uri: string;
  /** Bytes sent (the object's size). */
  bytes: number;
  examples: number;
}

/** JSON Lines media type. */
export const JSONL_CONTENT_TYPE = "application/jsonl";

/**
 * Streams `dataset` as Vertex JSONL to `gs://{bucket}/{object}`. Memory stays at one chunk
 * (`chunkBytes`); a retried attempt re-encodes from the first example.
 */
export async function uploadDataset(
  api: VertexApi,
  dataset: Dataset,
  target: { bucket: string; object: string },
  options: { signal?: AbortSignal | undefined; chunkBytes?: number } = {},
): Promise<StagedFile> {
  let bytes = 0;
  const result = await api.uploadObject(
    target.bucket,
    target.object,
    {
      contentType: JSONL_CONTENT_TYPE,
      data: () => {
        bytes = 0;
        const chunks = vertexJsonlChunks(dataset.examples, {
          ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
        });
        return (async function* counted() {
          for await (const chunk of chunks) {
            bytes += chunk.byteLength;
            yield chunk;
          }
        })();
      },
    },
    { signal: options.signal },
  );
  if (result.size !== undefined && result.size !== String(bytes)) {
    throw new InvalidResponseError(
      `Cloud Storage stored ${result.size} bytes for gs://${target.bucket}/${target.object}, but ${bytes} were sent`,
    );
  }
  return { uri: gcsUri(target.bucket, target.object), bytes, examples: dataset.size };
}
