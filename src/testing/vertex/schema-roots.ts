/**
 * The aiplatform v1 schemas the fake Vertex service reads or writes; the generated subset is
 * their `$ref` closure (see `scripts/extract-aiplatform-schemas.ts`).
 *
 * @internal
 */
export const VERTEX_ROOT_SCHEMAS: readonly string[] = [
  "GoogleCloudAiplatformV1TuningJob",
  "GoogleCloudAiplatformV1ListTuningJobsResponse",
  "GoogleCloudAiplatformV1CancelTuningJobRequest",
  "GoogleCloudAiplatformV1GenerateContentRequest",
  "GoogleCloudAiplatformV1GenerateContentResponse",
  "GoogleCloudAiplatformV1CountTokensRequest",
  "GoogleCloudAiplatformV1CountTokensResponse",
  "GoogleProtobufEmpty",
  "GoogleRpcStatus",
];
