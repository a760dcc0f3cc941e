/**
 * The Cloud Storage JSON API `Object` resource, as far as the fake upload endpoint writes it.
 * The storage v1 discovery document is not among the committed specs, so this subset is
 * written out by hand in the discovery form (field names, types and formats as documented for
 * `storage#object`: `size`, `generation` and `metageneration` are uint64/int64 strings).
 */
import type { DiscoverySchemas } from "../shared/schema-validator.js";

export const STORAGE_SCHEMAS: DiscoverySchemas = {
  StorageObject: {
    id: "StorageObject",
    type: "object",
    properties: {
      kind: { type: "string" },
      id: { type: "string" },
      selfLink: { type: "string" },
      mediaLink: { type: "string" },
      name: { type: "string" },
      bucket: { type: "string" },
      generation: { type: "string", format: "int64" },
      metageneration: { type: "string", format: "int64" },
      contentType: { type: "string" },
      storageClass: { type: "string" },
      size: { type: "string", format: "uint64" },
      md5Hash: { type: "string" },
      crc32c: { type: "string" },
      etag: { type: "string" },
      timeCreated: { type: "string", format: "date-time" },
      updated: { type: "string", format: "date-time" },
      timeStorageClassUpdated: { type: "string", format: "date-time" },
    },
  },
};
