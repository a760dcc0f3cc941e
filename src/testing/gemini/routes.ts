/**
 * The routes of the fake Gemini service: method + path (after `/{version}/`) → route name, the
 * API versions that bind it, the discovery schema of its request body and the query parameters
 * it declares (from the discovery document; `test/testing/gemini/routes.test.ts` checks them).
 */
import type { QueryParameter } from "../shared/proto-json.js";

/** The API methods the fake serves; faults and the request log name them. */
export type FakeRoute =
  | "listModels"
  | "getModel"
  | "modelGenerateContent"
  | "modelStreamGenerateContent"
  | "modelCountTokens"
  | "createTunedModel"
  | "listTunedModels"
  | "getTunedModel"
  | "updateTunedModel"
  | "deleteTunedModel"
  | "transferOwnership"
  | "generateContent"
  | "streamGenerateContent"
  | "countTokens"
  | "listOperations"
  | "getOperation"
  | "cancelOperation"
  | "createPermission"
  | "listPermissions"
  | "getPermission"
  | "updatePermission"
  | "deletePermission";

/** One route of the table. */
export interface GeminiRouteSpec {
  name: FakeRoute;
  method: string;
  pattern: RegExp;
  /** Versions that bind it; both `v1beta` and `v1` when absent. */
  versions?: ReadonlyArray<"v1" | "v1beta">;
  /** The discovery method id it follows (absent for paths the document lacks). */
  discoveryId?: string;
  /** Query parameters besides Google's system parameters. */
  query?: Record<string, QueryParameter>;
  /** The discovery schema of the request body and the proto name of the body in errors. */
  body?: { schema: string; root: string };
  /** The discovery schema of a successful reply. */
  response: string;
}

const paging: Record<string, QueryParameter> = {
  pageSize: { type: "integer", format: "int32" },
  pageToken: { type: "string" },
};
const generate = { schema: "GenerateContentRequest", root: "" };
const countTokens = { schema: "CountTokensRequest", root: "" };

/** Every route, in match order. */
export const GEMINI_ROUTES: readonly GeminiRouteSpec[] = [
  {
    name: "listModels",
    method: "GET",
    pattern: /^models$/,
    discoveryId: "generativelanguage.models.list",
    query: paging,
    response: "ListModelsResponse",
  },
  {
    name: "getModel",
    method: "GET",
    pattern: /^models\/([^/:]+)$/,
    discoveryId: "generativelanguage.models.get",
    response: "Model",
  },
  {
    name: "modelGenerateContent",
    method: "POST",
    pattern: /^models\/([^/:]+):generateContent$/,
    discoveryId: "generativelanguage.models.generateContent",
    body: generate,
    response: "GenerateContentResponse",
  },
  {
    name: "modelStreamGenerateContent",
    method: "POST",
    pattern: /^models\/([^/:]+):streamGenerateContent$/,
    discoveryId: "generativelanguage.models.streamGenerateContent",
    body: generate,
    response: "GenerateContentResponse",
  },
  {
    name: "modelCountTokens",
    method: "POST",
    pattern: /^models\/([^/:]+):countTokens$/,
    discoveryId: "generativelanguage.models.countTokens",
    body: countTokens,
    response: "CountTokensResponse",
  },
  {
    name: "listTunedModels",
    method: "GET",
    pattern: /^tunedModels$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.list",
    query: { ...paging, filter: { type: "string" } },
    response: "ListTunedModelsResponse",
  },
  {
    name: "createTunedModel",
    method: "POST",
    pattern: /^tunedModels$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.create",
    query: { tunedModelId: { type: "string" } },
    body: { schema: "TunedModel", root: "tuned_model" },
    response: "Operation",
  },
  {
    name: "getTunedModel",
    method: "GET",
    pattern: /^tunedModels\/([^/:]+)$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.get",
    response: "TunedModel",
  },
  {
    name: "updateTunedModel",
    method: "PATCH",
    pattern: /^tunedModels\/([^/:]+)$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.patch",
    query: { updateMask: { type: "string", format: "google-fieldmask" } },
    body: { schema: "TunedModel", root: "tuned_model" },
    response: "TunedModel",
  },
  {
    name: "deleteTunedModel",
    method: "DELETE",
    pattern: /^tunedModels\/([^/:]+)$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.delete",
    response: "Empty",
  },
  {
    name: "transferOwnership",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+):transferOwnership$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.transferOwnership",
    body: { schema: "TransferOwnershipRequest", root: "" },
    response: "TransferOwnershipResponse",
  },
  {
    name: "generateContent",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+):generateContent$/,
    discoveryId: "generativelanguage.tunedModels.generateContent",
    body: generate,
    response: "GenerateContentResponse",
  },
  {
    name: "streamGenerateContent",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+):streamGenerateContent$/,
    discoveryId: "generativelanguage.tunedModels.streamGenerateContent",
    body: generate,
    response: "GenerateContentResponse",
  },
  {
    // Not in the v1beta discovery document: the SDKs call it on tuned models as on base models.
    name: "countTokens",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+):countTokens$/,
    body: countTokens,
    response: "CountTokensResponse",
  },
  {
    name: "listOperations",
    method: "GET",
    pattern: /^tunedModels\/([^/:]+)\/operations$/,
    discoveryId: "generativelanguage.tunedModels.operations.list",
    query: { ...paging, filter: { type: "string" }, returnPartialSuccess: { type: "boolean" } },
    response: "ListOperationsResponse",
  },
  {
    name: "getOperation",
    method: "GET",
    pattern: /^tunedModels\/([^/:]+)\/operations\/([^/:]+)$/,
    discoveryId: "generativelanguage.tunedModels.operations.get",
    response: "Operation",
  },
  {
    // Bound under v1 only (the v1beta service config binds cancel for batches alone).
    name: "cancelOperation",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+)\/operations\/([^/:]+):cancel$/,
    versions: ["v1"],
    body: { schema: "CancelOperationRequest", root: "" },
    response: "Empty",
  },
  {
    name: "createPermission",
    method: "POST",
    pattern: /^tunedModels\/([^/:]+)\/permissions$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.permissions.create",
    body: { schema: "Permission", root: "permission" },
    response: "Permission",
  },
  {
    name: "listPermissions",
    method: "GET",
    pattern: /^tunedModels\/([^/:]+)\/permissions$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.permissions.list",
    query: paging,
    response: "ListPermissionsResponse",
  },
  {
    name: "getPermission",
    method: "GET",
    pattern: /^tunedModels\/([^/:]+)\/permissions\/([^/:]+)$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.permissions.get",
    response: "Permission",
  },
  {
    name: "updatePermission",
    method: "PATCH",
    pattern: /^tunedModels\/([^/:]+)\/permissions\/([^/:]+)$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.permissions.patch",
    query: { updateMask: { type: "string", format: "google-fieldmask" } },
    body: { schema: "Permission", root: "permission" },
    response: "Permission",
  },
  {
    name: "deletePermission",
    method: "DELETE",
    pattern: /^tunedModels\/([^/:]+)\/permissions\/([^/:]+)$/,
    versions: ["v1beta"],
    discoveryId: "generativelanguage.tunedModels.permissions.delete",
    response: "Empty",
  },
];
