/**
 * Schemas the fake needs that the committed v1beta discovery document (revision 20260325)
 * lacks. `CreateTunedModelMetadata` — the `Operation.metadata` of a tuning operation — is
 * defined by `google/ai/generativelanguage/v1beta/model_service.proto` and appeared only in an
 * old v1 discovery document (revision 20240410); it is written out here by hand in the same
 * form, prose removed. `CancelOperationRequest` (google.longrunning) is the body of the v1
 * cancel binding, which the v1beta document does not describe.
 */
import type { DiscoverySchemas } from "../shared/schema-validator.js";

export const SUPPLEMENTAL_SCHEMAS: DiscoverySchemas = {
  CreateTunedModelMetadata: {
    id: "CreateTunedModelMetadata",
    type: "object",
    properties: {
      completedPercent: { format: "float", type: "number" },
      completedSteps: { format: "int32", type: "integer" },
      snapshots: { items: { $ref: "TuningSnapshot" }, type: "array" },
      totalSteps: { format: "int32", type: "integer" },
      tunedModel: { type: "string" },
    },
  },
  CancelOperationRequest: {
    id: "CancelOperationRequest",
    type: "object",
    properties: {
      name: { type: "string" },
    },
  },
};
