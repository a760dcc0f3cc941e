/**
 * @internal `tunedModels/{id}/permissions`: create, list, get, patch (role only) and delete.
 * A new tuned model starts with one permission: its owner (`ownerEmail`).
 */
import { fail, invalid, type Reply } from "../shared/http.js";
import { pageOfQuery } from "../shared/pagination.js";
import type { GeminiFake, PermissionRecord, TunedModelRecord } from "./state.js";

function permissionJson(permission: PermissionRecord): Record<string, unknown> {
  return {
    name: permission.name,
    granteeType: permission.granteeType,
    ...(permission.emailAddress === undefined ? {} : { emailAddress: permission.emailAddress }),
    role: permission.role,
  };
}

function checkRole(role: unknown, field: string): PermissionRecord["role"] {
  if (role !== "READER" && role !== "WRITER" && role !== "OWNER") {
    invalid(`* ${field}: role is required (READER, WRITER or OWNER)`, [
      { field, description: "role must be READER, WRITER or OWNER" },
    ]);
  }
  return role;
}

export function findPermission(record: TunedModelRecord, permissionId: string): PermissionRecord {
  const name = `${record.name}/permissions/${permissionId}`;
  const permission = record.permissions.find((candidate) => candidate.name === name);
  if (permission === undefined) fail("NOT_FOUND", `Permission ${name} does not exist.`);
  return permission;
}

/** `POST tunedModels/{id}/permissions` with a canonical `Permission`. */
export function createPermission(
  fake: GeminiFake,
  record: TunedModelRecord,
  body: Record<string, unknown>,
): Reply {
  const granteeType = body.granteeType;
  if (granteeType !== "USER" && granteeType !== "GROUP" && granteeType !== "EVERYONE") {
    invalid("* permission.grantee_type: grantee_type is required (USER, GROUP or EVERYONE)", [
      { field: "permission.grantee_type", description: "must be USER, GROUP or EVERYONE" },
    ]);
  }
  const role = checkRole(body.role, "permission.role");
  const email = body.emailAddress;
  if (granteeType === "EVERYONE") {
    if (email !== undefined) {
      invalid("* permission.email_address: must be empty for grantee_type EVERYONE", [
        { field: "permission.email_address", description: "must be empty for EVERYONE" },
      ]);
    }
  } else if (typeof email !== "string" || !email.includes("@")) {
    invalid(`* permission.email_address: an email address is required for ${granteeType}`, [
      { field: "permission.email_address", description: `required for ${granteeType}` },
    ]);
  }
  if (role === "OWNER") {
    invalid("A model has one owner: use tunedModels.transferOwnership to change it.", [
      { field: "permission.role", description: "OWNER cannot be granted; transfer ownership" },
    ]);
  }
  const duplicate = record.permissions.find(
    (candidate) => candidate.granteeType === granteeType && candidate.emailAddress === email,
  );
  if (duplicate) {
    fail("ALREADY_EXISTS", `${duplicate.name} already grants ${granteeType} ${email ?? ""}`.trim());
  }
  const permission: PermissionRecord = {
    name: `${record.name}/permissions/${fake.randomId(12, false)}`,
    granteeType,
    emailAddress: typeof email === "string" ? email : undefined,
    role,
  };
  record.permissions.push(permission);
  return { status: 200, schema: "Permission", body: permissionJson(permission) };
}

export function listPermissions(record: TunedModelRecord, query: Record<string, unknown>): Reply {
  const { items, nextPageToken } = pageOfQuery(record.permissions, query, "", 10);
  const body: Record<string, unknown> = { permissions: items.map(permissionJson) };
  if (nextPageToken !== undefined) body.nextPageToken = nextPageToken;
  return { status: 200, schema: "ListPermissionsResponse", body };
}

export function getPermission(record: TunedModelRecord, permissionId: string): Reply {
  return {
    status: 200,
    schema: "Permission",
    body: permissionJson(findPermission(record, permissionId)),
  };
}

/** `PATCH …/permissions/{pid}?updateMask=role`: only the role may change. */
export function updatePermission(
  record: TunedModelRecord,
  permissionId: string,
  body: Record<string, unknown>,
  updateMask: string | undefined,
): Reply {
  const permission = findPermission(record, permissionId);
  const paths = (updateMask ?? "").split(",").filter((path) => path.length > 0);
  if (paths.length === 0) {
    invalid("* update_mask: update_mask is required", [
      { field: "update_mask", description: "update_mask is required (role)" },
    ]);
  }
  for (const path of paths) {
    if (path !== "role") {
      invalid(`Field "${path}" cannot be updated: only role is mutable.`, [
        { field: "update_mask", description: `"${path}" is not updatable` },
      ]);
    }
  }
  const role = checkRole(body.role, "permission.role");
  if (role === "OWNER" || permission.role === "OWNER") {
    invalid("Ownership changes only through tunedModels.transferOwnership.", [
      { field: "permission.role", description: "use transferOwnership" },
    ]);
  }
  permission.role = role;
  return { status: 200, schema: "Permission", body: permissionJson(permission) };
}

export function deletePermission(record: TunedModelRecord, permissionId: string): Reply {
  const permission = findPermission(record, permissionId);
  if (permission.role === "OWNER") {
    fail(
      "FAILED_PRECONDITION",
      "The owner's permission cannot be deleted: transfer ownership first.",
    );
  }
  record.permissions.splice(record.permissions.indexOf(permission), 1);
  return { status: 200, schema: "Empty", body: {} };
}
