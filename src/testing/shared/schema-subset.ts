/**
 * Picks the schemas the fake service needs out of a full Google discovery document.
 * Used by `scripts/extract-discovery-schemas.ts` (which writes
 * `discovery-schemas.generated.ts`) and by the test that proves the generated subset
 * still equals the committed copy of the document.
 *
 * @internal
 */
import type { DiscoverySchema, DiscoverySchemas } from "./schema-validator.js";

/** The schemas the fake service reads or writes; their `$ref` closure is kept too. */
export const FAKE_ROOT_SCHEMAS: readonly string[] = [
  "TunedModel",
  "Operation",
  "Status",
  "Empty",
  "ListTunedModelsResponse",
  "ListOperationsResponse",
  "Model",
  "ListModelsResponse",
  "GenerateContentRequest",
  "GenerateContentResponse",
  "CountTokensRequest",
  "CountTokensResponse",
  "Permission",
  "ListPermissionsResponse",
  "TransferOwnershipRequest",
  "TransferOwnershipResponse",
];

/** Keys dropped from each schema: prose only, no effect on validation. */
const PROSE_KEYS = new Set(["description", "enumDescriptions"]);

function stripProse(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripProse);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (PROSE_KEYS.has(key) && typeof inner === "string") continue;
      if (key === "enumDescriptions") continue;
      if (key === "properties" && inner !== null && typeof inner === "object") {
        // Property names are data, not prose: a property may well be called "description".
        out[key] = Object.fromEntries(
          Object.entries(inner).map(([name, schema]) => [name, stripProse(schema)]),
        );
        continue;
      }
      out[key] = stripProse(inner);
    }
    return out;
  }
  return value;
}

function collectRefs(value: unknown, into: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value) collectRefs(item, into);
    return;
  }
  if (value !== null && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) {
      if (key === "$ref" && typeof inner === "string") into.push(inner);
      else collectRefs(inner, into);
    }
  }
}

/**
 * The `$ref` closure of `roots` in `document.schemas`, with descriptions removed and the
 * names sorted. Throws when a root is missing; references the document lacks are skipped.
 */
export function extractSchemaSubset(
  document: { schemas?: Record<string, unknown> },
  roots: readonly string[] = FAKE_ROOT_SCHEMAS,
): DiscoverySchemas {
  const all = document.schemas ?? {};
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    const schema = all[name];
    if (schema === undefined) {
      // The document has dangling references (revision 20260325: Part.mediaResolution →
      // MediaResolution); the validator reports those as "unknown_schema" when reached.
      if (roots.includes(name))
        throw new Error(`Schema "${name}" is not in the discovery document`);
      continue;
    }
    seen.add(name);
    collectRefs(schema, stack);
  }
  const out: DiscoverySchemas = {};
  for (const name of [...seen].sort()) out[name] = stripProse(all[name]) as DiscoverySchema;
  return out;
}
