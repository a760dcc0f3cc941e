/**
 * Thin typed wrappers over the Gemini API's REST methods used by tunekit. Paths and
 * versions follow the discovery document and REMOTE-API-FACTS: management under the
 * configured version (`v1beta`), operation cancel only under `v1`.
 */
import type { HttpClient } from "../remote/http.js";
import {
  GenerateContentResponseSchema,
  ListOperationsResponseSchema,
  ListTunedModelsResponseSchema,
  ModelSchema,
  OperationSchema,
  TunedModelSchema,
} from "./schemas.js";
import type {
  WireGenerateContentRequest,
  WireGenerateContentResponse,
  WireListOperationsResponse,
  WireListTunedModelsResponse,
  WireModel,
  WireOperation,
  WireTunedModel,
} from "./wire.js";

/** Per-call options every method accepts. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export class GeminiApi {
  readonly http: HttpClient;
  /** The version that binds `tunedModels/*\/operations/*:cancel` (only `v1` does). */
  readonly cancelApiVersion: string;
  /** Per-attempt timeout for generation calls. */
  readonly generateTimeoutMs: number;

  constructor(http: HttpClient, options: { cancelApiVersion: string; generateTimeoutMs: number }) {
    this.http = http;
    this.cancelApiVersion = options.cancelApiVersion;
    this.generateTimeoutMs = options.generateTimeoutMs;
  }

  getModel(name: string, options: CallOptions = {}): Promise<WireModel> {
    return this.http.request({
      method: "GET",
      path: name,
      signal: options.signal,
      reply: { schema: ModelSchema, kind: "Model" },
    });
  }

  getTunedModel(name: string, options: CallOptions = {}): Promise<WireTunedModel> {
    return this.http.request({
      method: "GET",
      path: name,
      signal: options.signal,
      reply: { schema: TunedModelSchema, kind: "TunedModel" },
    });
  }

  listTunedModels(
    query: {
      pageSize?: number | undefined;
      pageToken?: string | undefined;
      filter?: string | undefined;
    },
    options: CallOptions = {},
  ): Promise<WireListTunedModelsResponse> {
    return this.http.request({
      method: "GET",
      path: "tunedModels",
      query,
      signal: options.signal,
      reply: { schema: ListTunedModelsResponseSchema, kind: "ListTunedModelsResponse" },
    });
  }

  patchTunedModel(
    name: string,
    body: WireTunedModel,
    updateMask: readonly string[],
    options: CallOptions = {},
  ): Promise<WireTunedModel> {
    return this.http.request({
      method: "PATCH",
      path: name,
      query: { updateMask: updateMask.join(",") },
      body,
      signal: options.signal,
      reply: { schema: TunedModelSchema, kind: "TunedModel" },
    });
  }

  deleteTunedModel(name: string, options: CallOptions = {}): Promise<unknown> {
    return this.http.request({ method: "DELETE", path: name, signal: options.signal });
  }

  getOperation(name: string, options: CallOptions = {}): Promise<WireOperation> {
    return this.http.request({
      method: "GET",
      path: name,
      signal: options.signal,
      reply: { schema: OperationSchema, kind: "Operation" },
    });
  }

  listOperations(
    tunedModel: string,
    query: {
      pageSize?: number | undefined;
      pageToken?: string | undefined;
      filter?: string | undefined;
    },
    options: CallOptions = {},
  ): Promise<WireListOperationsResponse> {
    return this.http.request({
      method: "GET",
      path: `${tunedModel}/operations`,
      query,
      signal: options.signal,
      reply: { schema: ListOperationsResponseSchema, kind: "ListOperationsResponse" },
    });
  }

  /** `POST v1/{operation}:cancel` with an empty body; safe to repeat. */
  cancelOperation(name: string, options: CallOptions = {}): Promise<unknown> {
    return this.http.request({
      method: "POST",
      path: `${name}:cancel`,
      apiVersion: this.cancelApiVersion,
      body: {},
      retry: true,
      signal: options.signal,
    });
  }

  generateContent(
    model: string,
    body: WireGenerateContentRequest,
    options: CallOptions = {},
  ): Promise<WireGenerateContentResponse> {
    return this.http.request({
      method: "POST",
      path: `${model}:generateContent`,
      body,
      // Generation has no side effects on the model: repeating it is safe.
      retry: true,
      timeoutMs: this.generateTimeoutMs,
      signal: options.signal,
      reply: { schema: GenerateContentResponseSchema, kind: "GenerateContentResponse" },
    });
  }

  /** Opens the SSE stream (retrying until the response headers arrive); the body is the caller's. */
  streamGenerateContent(
    model: string,
    body: WireGenerateContentRequest,
    options: CallOptions = {},
  ): Promise<Response> {
    const request = {
      method: "POST" as const,
      path: `${model}:streamGenerateContent`,
      query: { alt: "sse" },
      body,
      retry: true,
      timeoutMs: this.generateTimeoutMs,
      deadlineMs: this.generateTimeoutMs,
      signal: options.signal,
    };
    return this.http.retrying((context) => this.http.send(request, context), request);
  }
}
