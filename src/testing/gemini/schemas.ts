/** The Gemini API schemas the fake reads and writes: the discovery subset plus supplements. */
import type { DiscoverySchemas } from "../shared/schema-validator.js";
import { DISCOVERY_SCHEMAS } from "./discovery-schemas.generated.js";
import { SUPPLEMENTAL_SCHEMAS } from "./supplemental-schemas.js";

/** The schemas bundled with tunekit/testing: the discovery subset plus supplements. */
export const BUNDLED_SCHEMAS: DiscoverySchemas = { ...DISCOVERY_SCHEMAS, ...SUPPLEMENTAL_SCHEMAS };
