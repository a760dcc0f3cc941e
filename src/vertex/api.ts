/**
 * Thin typed wrappers over the Vertex AI REST methods tunekit uses (aiplatform `v1`:
 * `tuningJobs` create/get/list/cancel, `endpoints` generateContent) and the Cloud Storage JSON
 * API's media upload. Paths follow the aiplatform discovery document.
 */
import type { HttpClient, HttpRequest, UploadBody } from "../remote/http.js";
import { locationOf } from "./names.js";
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
    return { method: "POST", path: `${parent}/tuningJobs`, body, signal, retry: true };
  }

  getTuningJob(name: string, options: CallOptions = {}): Promise<WireTuningJob> {
    return this.clientFor(name).request({ method: "GET", path: name, signal: options.signal });
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
    });
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
    });
  }
}
