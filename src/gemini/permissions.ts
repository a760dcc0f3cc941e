/**
 * Sharing a tuned model: `tunedModels/{id}/permissions` (create, list, get, update, delete).
 * Roles nest: `READER` may call the model, `WRITER` may also edit and share it, `OWNER` may
 * also delete it.
 */
import { InvalidOptionError } from "../core/errors.js";
import { PagePromise } from "../remote/pager.js";
import type { GeminiApi } from "./api.js";
import { parseTuningName } from "./names.js";
import { ListPermissionsResponseSchema, PermissionSchema } from "./schemas.js";

export type PermissionRole = "READER" | "WRITER" | "OWNER";
export type GranteeType = "USER" | "GROUP" | "EVERYONE";

/** A permission as the service returns it. */
export interface GeminiPermission {
  /** `tunedModels/{id}/permissions/{permission}`. */
  name?: string | undefined;
  granteeType?: GranteeType | "GRANTEE_TYPE_UNSPECIFIED" | undefined;
  /** Absent for `EVERYONE`. */
  emailAddress?: string | undefined;
  role?: PermissionRole | "ROLE_UNSPECIFIED" | undefined;
}

/** What `create` needs: a user or group by email, or everyone. */
export type NewPermission =
  | { granteeType: "USER" | "GROUP"; emailAddress: string; role: PermissionRole }
  | { granteeType: "EVERYONE"; role: PermissionRole };

const ROLES: readonly string[] = ["READER", "WRITER", "OWNER"];

function checkRole(role: unknown): void {
  if (typeof role !== "string" || !ROLES.includes(role)) {
    throw new InvalidOptionError(
      "role",
      `role must be one of ${ROLES.join(", ")}, got ${String(role)}`,
    );
  }
}

function permissionName(name: string): string {
  const match = /^(tunedModels\/[^/]+)\/permissions\/[^/]+$/.exec(name.trim());
  if (!match) {
    throw new InvalidOptionError(
      "name",
      `"${name}" is not a permission name: expected "tunedModels/{id}/permissions/{permission}"`,
    );
  }
  return name.trim();
}

/**
 * The permissions of tuned models (reach it as `tuner.permissions`).
 *
 * @example
 * ```ts
 * await tuner.permissions.create("tunedModels/my-model", {
 *   granteeType: "USER",
 *   emailAddress: "teammate@example.com",
 *   role: "READER",
 * });
 * for await (const p of tuner.permissions.list("tunedModels/my-model")) console.log(p.emailAddress, p.role);
 * ```
 */
export class GeminiPermissions {
  readonly #api: GeminiApi;

  /** @internal */
  constructor(api: GeminiApi) {
    this.#api = api;
  }

  /** Grants a role. Not retried on failure (a repeat could grant twice). */
  async create(
    model: string,
    permission: NewPermission,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<GeminiPermission> {
    const { tunedModel } = parseTuningName(model, "model");
    checkRole(permission.role);
    const body: GeminiPermission = { granteeType: permission.granteeType, role: permission.role };
    if (permission.granteeType === "USER" || permission.granteeType === "GROUP") {
      if (typeof permission.emailAddress !== "string" || !permission.emailAddress.includes("@")) {
        throw new InvalidOptionError(
          "emailAddress",
          `A ${permission.granteeType} permission needs an emailAddress`,
        );
      }
      body.emailAddress = permission.emailAddress;
    } else if (permission.granteeType === "EVERYONE") {
      if ("emailAddress" in permission) {
        throw new InvalidOptionError(
          "emailAddress",
          "An EVERYONE permission takes no emailAddress",
        );
      }
    } else {
      throw new InvalidOptionError("granteeType", "granteeType must be USER, GROUP or EVERYONE");
    }
    return this.#api.http.request({
      method: "POST",
      path: `${tunedModel}/permissions`,
      body,
      signal: options.signal,
      reply: { schema: PermissionSchema, kind: "Permission" },
    });
  }

  /** Lists a model's permissions: await for one page, `for await` for all. */
  list(
    model: string,
    options: { pageSize?: number; signal?: AbortSignal | undefined } = {},
  ): PagePromise<GeminiPermission> {
    const { tunedModel } = parseTuningName(model, "model");
    return new PagePromise(async (pageToken) => {
      const response = await this.#api.http.request<{
        permissions?: GeminiPermission[];
        nextPageToken?: string;
      }>({
        method: "GET",
        path: `${tunedModel}/permissions`,
        query: { pageSize: options.pageSize, pageToken },
        signal: options.signal,
        reply: { schema: ListPermissionsResponseSchema, kind: "ListPermissionsResponse" },
      });
      return { items: response.permissions ?? [], nextPageToken: response.nextPageToken };
    });
  }

  async get(
    name: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<GeminiPermission> {
    return this.#api.http.request({
      method: "GET",
      path: permissionName(name),
      signal: options.signal,
      reply: { schema: PermissionSchema, kind: "Permission" },
    });
  }

  /** Changes the role (the only mutable field: `updateMask=role`). */
  async update(
    name: string,
    update: { role: PermissionRole },
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<GeminiPermission> {
    checkRole(update.role);
    return this.#api.http.request({
      method: "PATCH",
      path: permissionName(name),
      query: { updateMask: "role" },
      body: { role: update.role },
      signal: options.signal,
      reply: { schema: PermissionSchema, kind: "Permission" },
    });
  }

  /**
   * Makes `emailAddress` the owner of `model` (`POST tunedModels/{id}:transferOwnership`): the
   * only way to change a model's owner. The current owner becomes a writer.
   */
  async transferOwnership(
    model: string,
    emailAddress: string,
    options: { signal?: AbortSignal | undefined } = {},
  ): Promise<void> {
    const { tunedModel } = parseTuningName(model, "model");
    if (typeof emailAddress !== "string" || !emailAddress.includes("@")) {
      throw new InvalidOptionError(
        "emailAddress",
        "transferOwnership needs the new owner's email address",
      );
    }
    await this.#api.http.request({
      method: "POST",
      path: `${tunedModel}:transferOwnership`,
      body: { emailAddress },
      signal: options.signal,
    });
  }

  async delete(name: string, options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    await this.#api.http.request({
      method: "DELETE",
      path: permissionName(name),
      signal: options.signal,
    });
  }
}
