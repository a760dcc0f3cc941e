/**
 * zod schemas of the Gemini API replies tunekit reads (discovery document
 * `generativelanguage v1beta`). tunekit checks every reply against them before reading it, so a
 * malformed reply is an `InvalidResponseError` naming the field; they are exported for code
 * that calls the API itself. Lenient as proto3 JSON is (see `remote/reply.ts`): fields may be
 * absent, unknown fields and enum values are kept.
 *
 * @example
 * ```ts
 * import { TunedModelSchema } from "tunekit/gemini";
 * const model = TunedModelSchema.parse(await (await fetch(url, { headers })).json());
 * ```
 */
import { z } from "zod";
import {
  generateContentResponseSchema,
  protoEnum,
  protoFloat,
  protoInt32,
  protoTimestamp,
  RpcStatusSchema,
} from "../remote/reply.js";
import type { GeminiPermission } from "./permissions.js";
import type {
  WireCreateTunedModelMetadata,
  WireGenerateContentResponse,
  WireListOperationsResponse,
  WireListTunedModelsResponse,
  WireModel,
  WireOperation,
  WireTunedModel,
  WireTuningSnapshot,
} from "./wire.js";

/** `TuningSnapshot`: one step's loss. */
export const TuningSnapshotSchema: z.ZodType<WireTuningSnapshot> = z.looseObject({
  step: protoInt32.optional(),
  epoch: protoInt32.optional(),
  meanLoss: protoFloat.optional(),
  computeTime: protoTimestamp.optional(),
});

const HyperparametersSchema = z.looseObject({
  epochCount: protoInt32.optional(),
  batchSize: protoInt32.optional(),
  learningRate: protoFloat.optional(),
  learningRateMultiplier: protoFloat.optional(),
});

/** `TunedModel`. */
export const TunedModelSchema: z.ZodType<WireTunedModel> = z.looseObject({
  name: z.string().optional(),
  baseModel: z.string().optional(),
  tunedModelSource: z
    .looseObject({ tunedModel: z.string().optional(), baseModel: z.string().optional() })
    .optional(),
  displayName: z.string().optional(),
  description: z.string().optional(),
  temperature: protoFloat.optional(),
  topP: protoFloat.optional(),
  topK: protoInt32.optional(),
  state: protoEnum.optional(),
  createTime: protoTimestamp.optional(),
  updateTime: protoTimestamp.optional(),
  tuningTask: z
    .looseObject({
      startTime: protoTimestamp.optional(),
      completeTime: protoTimestamp.optional(),
      snapshots: z.array(TuningSnapshotSchema).optional(),
      hyperparameters: HyperparametersSchema.optional(),
    })
    .optional(),
  readerProjectNumbers: z.array(z.union([z.string(), z.number().transform(String)])).optional(),
});

/** `CreateTunedModelMetadata`: the metadata of a tuning operation (every field may be absent early). */
export const CreateTunedModelMetadataSchema: z.ZodType<WireCreateTunedModelMetadata> =
  z.looseObject({
    "@type": z.string().optional(),
    tunedModel: z.string().optional(),
    totalSteps: protoInt32.optional(),
    completedSteps: protoInt32.optional(),
    completedPercent: protoFloat.optional(),
    snapshots: z.array(TuningSnapshotSchema).optional(),
  });

/** `Operation` of a tuning run. */
export const OperationSchema: z.ZodType<WireOperation> = z.looseObject({
  name: z.string().optional(),
  metadata: CreateTunedModelMetadataSchema.optional(),
  done: z.boolean().optional(),
  error: RpcStatusSchema.optional(),
  response: TunedModelSchema.optional(),
});

/** `ListTunedModelsResponse`. */
export const ListTunedModelsResponseSchema: z.ZodType<WireListTunedModelsResponse> = z.looseObject({
  tunedModels: z.array(TunedModelSchema).optional(),
  nextPageToken: z.string().optional(),
});

/** `ListOperationsResponse`. */
export const ListOperationsResponseSchema: z.ZodType<WireListOperationsResponse> = z.looseObject({
  operations: z.array(OperationSchema).optional(),
  nextPageToken: z.string().optional(),
});

/** `Model` (a base model). */
export const ModelSchema: z.ZodType<WireModel> = z.looseObject({
  name: z.string().optional(),
  baseModelId: z.string().optional(),
  displayName: z.string().optional(),
  supportedGenerationMethods: z.array(z.string()).optional(),
  inputTokenLimit: protoInt32.optional(),
  temperature: protoFloat.optional(),
  topP: protoFloat.optional(),
  topK: protoInt32.optional(),
});

/** `ListModelsResponse`. */
export const ListModelsResponseSchema: z.ZodType<{
  models?: WireModel[] | undefined;
  nextPageToken?: string | undefined;
}> = z.looseObject({
  models: z.array(ModelSchema).optional(),
  nextPageToken: z.string().optional(),
});

/** `GenerateContentResponse` (and each event of a stream). */
export const GenerateContentResponseSchema: z.ZodType<WireGenerateContentResponse> =
  generateContentResponseSchema;

/** `Permission`. */
export const PermissionSchema: z.ZodType<GeminiPermission> = z.looseObject({
  name: z.string().optional(),
  granteeType: z.enum(["GRANTEE_TYPE_UNSPECIFIED", "USER", "GROUP", "EVERYONE"]).optional(),
  emailAddress: z.string().optional(),
  role: z.enum(["ROLE_UNSPECIFIED", "OWNER", "WRITER", "READER"]).optional(),
});

/** `ListPermissionsResponse`. */
export const ListPermissionsResponseSchema: z.ZodType<{
  permissions?: GeminiPermission[] | undefined;
  nextPageToken?: string | undefined;
}> = z.looseObject({
  permissions: z.array(PermissionSchema).optional(),
  nextPageToken: z.string().optional(),
});

/** `Empty` (and any reply tunekit does not read). */
export const EmptySchema = z.looseObject({});
