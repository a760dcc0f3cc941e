/**
 * Thin typed wrappers over the Vertex AI REST methods tunekit uses (aiplatform `v1`:
 * `tuningJobs` create/get/list/cancel, `endpoints` generateContent) and the Cloud Storage JSON
 * API's media upload. Paths follow the aiplatform discovery document.
 */

import { InvalidResponseError } from "../core/errors.js";
import type { AttemptContext } from "../core/retry.js";
import type { HttpClient, HttpRequest, UploadBody } from "../remote/http.js";
import { checkReply } from "../remote/reply.js";
import { locationOf } from "./names.js";
import {
  GenerateContentResponseSchema,
  ListTuningJobsResponseSchema,
  StorageObjectSchema,
  TuningJobSchema,
} from "./schemas.js";
import type {
  WireGenerateContentRequest,
  WireGenerateContentResponse,
  WireListTuningJobsResponse,
  WireStorageObject,
  WireTuningJob,
} from "./wire.js";

/** Per-call options every method accepts. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export class VertexApi {
  readonly #clientFor: (location: string | undefined) => HttpClient;
  /** The Cloud Storage client (`https://storage.googleapis.com`, no version segment). */
  readonly storage: HttpClient;
  /** Per-attempt timeout for generation calls. */
  readonly generateTimeoutMs: number;
  /** Per-attempt timeout of an upload. */
  readonly uploadTimeoutMs: number;

  constructor(options: {
    clientFor: (location: string | undefined) => HttpClient;
    storage: HttpClient;
    generateTimeoutMs: number;
    uploadTimeoutMs: number;
  }) {
    this.#clientFor = options.clientFor;
    this.storage = options.storage;
    this.generateTimeoutMs = options.generateTimeoutMs;
    this.uploadTimeoutMs = options.uploadTimeoutMs;
  }

  /** The aiplatform client serving `resource`'s location (regional host, or the override). */
  clientFor(resource: string): HttpClient {
    return this.#clientFor(locationOf(`${resource}/`));
  }

  /** `POST v1/{parent}/tuningJobs` as a request description (the tuner drives the retries). */
  createRequest(parent: string, body: WireTuningJob, signal?: AbortSignal): HttpRequest {
    return {
      method: "POST",
      path: `${parent}/tuningJobs`,
      body,
      signal,
      retry: true,
      reply: { schema: TuningJobSchema, kind: "TuningJob" },
    };
  }

  getTuningJob(name: string, options: CallOptions = {}): Promise<WireTuningJob> {
    return this.clientFor(name).request({
      method: "GET",
      path: name,
      signal: options.signal,
      reply: { schema: TuningJobSchema, kind: "TuningJob" },
    });
  }

  listTuningJobs(
    parent: string,
    query: {
      pageSize?: number | undefined;
      pageToken?: string | undefined;
      filter?: string | undefined;
    },
    options: CallOptions = {},
  ): Promise<WireListTuningJobsResponse> {
    return this.clientFor(parent).request({
      method: "GET",
      path: `${parent}/tuningJobs`,
      query,
      signal: options.signal,
      reply: { schema: ListTuningJobsResponseSchema, kind: "ListTuningJobsResponse" },
    });
  }

  /** `POST v1/{name}:cancel` with an empty `CancelTuningJobRequest`; safe to repeat. */
  cancelTuningJob(name: string, options: CallOptions = {}): Promise<unknown> {
    return this.clientFor(name).request({
      method: "POST",
      path: `${name}:cancel`,
      body: {},
      retry: true,
      signal: options.signal,
    });
  }

  generateContent(
    endpoint: string,
    body: WireGenerateContentRequest,
    options: CallOptions = {},
  ): Promise<WireGenerateContentResponse> {
    return this.clientFor(endpoint).request({
      method: "POST",
      path: `${endpoint}:generateContent`,
      body,
      // Generation changes nothing: repeating it is safe.
      retry: true,
      timeoutMs: this.generateTimeoutMs,
      signal: options.signal,
      reply: { schema: GenerateContentResponseSchema, kind: "GenerateContentResponse" },
    });
  }

  /** Opens the `:streamGenerateContent?alt=sse` stream (retrying until headers arrive); the body is the caller's. */
  streamGenerateContent(
    endpoint: string,
    body: WireGenerateContentRequest,
    options: CallOptions = {},
  ): Promise<Response> {
    const http = this.clientFor(endpoint);
    const request: HttpRequest = {
      method: "POST",
      path: `${endpoint}:streamGenerateContent`,
      query: { alt: "sse" },
      body,
      retry: true,
      timeoutMs: this.generateTimeoutMs,
      deadlineMs: this.generateTimeoutMs,
      signal: options.signal,
    };
    return http.retrying((context) => http.send(request, context), request);
  }

  /**
   * `POST upload/storage/v1/b/{bucket}/o?uploadType=media&name={object}`: a single-request
   * media upload, streamed. Retried when it fails: each attempt resends the whole object from
   * the start (an object write is all-or-nothing, and rewriting the same bytes is harmless).
   */
  uploadObject(
    bucket: string,
    object: string,
    upload: UploadBody,
    options: CallOptions = {},
  ): Promise<WireStorageObject> {
    return this.storage.request({
      method: "POST",
      path: `upload/storage/v1/b/${encodeURIComponent(bucket)}/o`,
      query: { uploadType: "media", name: object },
      upload,
      retry: true,
      timeoutMs: this.uploadTimeoutMs,
      deadlineMs: this.uploadTimeoutMs * 3,
      signal: options.signal,
      reply: { schema: StorageObjectSchema, kind: "Object" },
    });
  }

  /**
   * Starts a resumable upload (`POST upload/storage/v1/b/{bucket}/o?uploadType=resumable`) and
   * returns the session URI from the `Location` header. Safe to repeat: an unused session
   * creates nothing.
   */
  async startResumableUpload(
    bucket: string,
    object: string,
    contentType: string,
    options: CallOptions = {},
  ): Promise<string> {
    const request: HttpRequest = {
      method: "POST",
      path: `upload/storage/v1/b/${encodeURIComponent(bucket)}/o`,
      query: { uploadType: "resumable", name: object },
      body: { name: object, contentType },
      headers: { "x-upload-content-type": contentType },
      retry: true,
      signal: options.signal,
    };
    const response = await this.storage.retrying(
      (context) => this.storage.send(request, context),
      request,
    );
    await response.arrayBuffer().catch(() => undefined); // drain (small); cancel() can stall under msw
    const location = response.headers.get("location");
    const base = `${this.storage.baseUrl}/`;
    if (!location?.startsWith(base)) {
      // The session URI receives the credentials: only ever send them to the storage host.
      throw new InvalidResponseError(
        `Cloud Storage started a resumable upload of gs://${bucket}/${object} without a session URI on ${this.storage.baseUrl}`,
      );
    }
    return location;
  }

  /**
   * One `PUT` of a resumable upload: `bytes` at `offset`; `total` only with the last chunk.
   * With no bytes it asks how much the service has (`Content-Range: bytes *\/{total|*}`).
   * Resolves to the persisted byte count (308 Resume Incomplete) or the finished object.
   */
  async putUploadChunk(
    session: string,
    bytes: Uint8Array,
    offset: number,
    total: number | undefined,
    context: AttemptContext | undefined,
    options: CallOptions = {},
  ): Promise<{ persisted: number; object?: WireStorageObject }> {
    const range =
      bytes.byteLength === 0
        ? `bytes */${total ?? "*"}`
        : `bytes ${offset}-${offset + bytes.byteLength - 1}/${total ?? "*"}`;
    const request: HttpRequest = {
      method: "PUT",
      path: session.slice(this.storage.baseUrl.length + 1),
      upload: { contentType: "application/octet-stream", data: () => bytes },
      headers: { "content-range": range },
      acceptStatus: [308],
      timeoutMs: this.uploadTimeoutMs,
      signal: options.signal,
    };
    const response = await this.storage.send(request, context);
    if (response.status === 308) {
      await response.arrayBuffer().catch(() => undefined); // drain (small); cancel() can stall under msw
      const match = /^bytes=0-(\d+)$/.exec(response.headers.get("range") ?? "");
      return { persisted: match ? Number(match[1]) + 1 : 0 };
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new InvalidResponseError("The finished upload returned a body that is not JSON", {
        cause: error,
      });
    }
    const object = checkReply(StorageObjectSchema, json, "PUT (resumable upload)", "Object");
    return { persisted: Number(object.size ?? total ?? 0), object };
  }
}
