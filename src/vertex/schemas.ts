/**
 * zod schemas of the Vertex AI (aiplatform v1) and Cloud Storage replies tunekit reads. tunekit
 * checks every reply against them before reading it, so a malformed reply is an
 * `InvalidResponseError` naming the field; they are exported for code that calls the API
 * itself. Lenient as proto3 JSON is (see `remote/reply.ts`).
 *
 * @example
 * ```ts
 * import { TuningJobSchema } from "tunekit/vertex";
 * const job = TuningJobSchema.parse(await (await fetch(url, { headers })).json());
 * ```
 */
import { z } from "zod";
import {
  generateContentResponseSchema,
  protoEnum,
  protoFloat,
  protoInt64,
  protoTimestamp,
  RpcStatusSchema,
} from "../remote/reply.js";
import type {
  WireGenerateContentResponse,
  WireListTuningJobsResponse,
  WireStorageObject,
  WireTuningJob,
} from "./wire.js";

const DistributionSchema = z.looseObject({
  sum: protoInt64.optional(),
  billableSum: protoInt64.optional(),
  min: protoFloat.optional(),
  max: protoFloat.optional(),
  mean: protoFloat.optional(),
  median: protoFloat.optional(),
  p5: protoFloat.optional(),
  p95: protoFloat.optional(),
});

/** `GoogleCloudAiplatformV1TuningJob`. */
export const TuningJobSchema: z.ZodType<WireTuningJob> = z.looseObject({
  name: z.string().optional(),
  baseModel: z.string().optional(),
  tunedModelDisplayName: z.string().optional(),
  description: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  supervisedTuningSpec: z
    .looseObject({
      trainingDatasetUri: z.string().optional(),
      validationDatasetUri: z.string().optional(),
      hyperParameters: z
        .looseObject({
          epochCount: protoInt64.optional(),
          learningRateMultiplier: protoFloat.optional(),
          adapterSize: protoEnum.optional(),
        })
        .optional(),
      exportLastCheckpointOnly: z.boolean().optional(),
    })
    .optional(),
  serviceAccount: z.string().optional(),
  encryptionSpec: z.looseObject({ kmsKeyName: z.string().optional() }).optional(),
  state: protoEnum.optional(),
  createTime: protoTimestamp.optional(),
  startTime: protoTimestamp.optional(),
  endTime: protoTimestamp.optional(),
  updateTime: protoTimestamp.optional(),
  error: RpcStatusSchema.optional(),
  tunedModel: z
    .looseObject({
      model: z.string().optional(),
      endpoint: z.string().optional(),
      checkpoints: z
        .array(
          z.looseObject({
            checkpointId: z.string().optional(),
            epoch: protoInt64.optional(),
            step: protoInt64.optional(),
            endpoint: z.string().optional(),
          }),
        )
        .optional(),
    })
    .optional(),
  tuningDataStats: z
    .looseObject({
      supervisedTuningDataStats: z
        .looseObject({
          tuningDatasetExampleCount: protoInt64.optional(),
          totalTuningCharacterCount: protoInt64.optional(),
          totalBillableTokenCount: protoInt64.optional(),
          tuningStepCount: protoInt64.optional(),
          totalTruncatedExampleCount: protoInt64.optional(),
          truncatedExampleIndices: z.array(protoInt64).optional(),
          droppedExampleReasons: z.array(z.string()).optional(),
          userInputTokenDistribution: DistributionSchema.optional(),
          userOutputTokenDistribution: DistributionSchema.optional(),
          userMessagePerExampleDistribution: DistributionSchema.optional(),
        })
        .optional(),
    })
    .optional(),
  experiment: z.string().optional(),
});

/** `GoogleCloudAiplatformV1ListTuningJobsResponse`. */
export const ListTuningJobsResponseSchema: z.ZodType<WireListTuningJobsResponse> = z.looseObject({
  tuningJobs: z.array(TuningJobSchema).optional(),
  nextPageToken: z.string().optional(),
});

/** `GoogleCloudAiplatformV1GenerateContentResponse` (and each event of a stream). */
export const GenerateContentResponseSchema: z.ZodType<WireGenerateContentResponse> =
  generateContentResponseSchema;

/** The Cloud Storage `Object` resource an upload answers. */
export const StorageObjectSchema: z.ZodType<WireStorageObject> = z.looseObject({
  bucket: z.string().optional(),
  name: z.string().optional(),
  size: protoInt64.optional(),
  generation: protoInt64.optional(),
  contentType: z.string().optional(),
});
