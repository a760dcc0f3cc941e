/** The schemas the fake Vertex service reads and writes: the aiplatform subset plus Cloud Storage's `Object`. */
import type { DiscoverySchemas } from "../shared/schema-validator.js";
import { AIPLATFORM_SCHEMAS } from "./aiplatform-schemas.generated.js";
import { STORAGE_SCHEMAS } from "./storage-schemas.js";

/** The aiplatform subset plus the Cloud Storage `Object` schema. */
export const VERTEX_SCHEMAS: DiscoverySchemas = { ...AIPLATFORM_SCHEMAS, ...STORAGE_SCHEMAS };
