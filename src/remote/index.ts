/**
 * Shared plumbing of the Google REST backends (Gemini API now, Vertex AI later): HTTP with
 * retries and deadlines, credentials, google.rpc error mapping, pagination and SSE.
 * Internal to tunekit; the backends re-export what their users need.
 */
export * from "./adc.js";
export * from "./auth.js";
export * from "./create-outcome.js";
export * from "./description-metadata.js";
export * from "./errors.js";
export * from "./http.js";
export * from "./pager.js";
export * from "./redact.js";
export * from "./reply.js";
export * from "./request-id.js";
export * from "./response-text.js";
export * from "./sse.js";
