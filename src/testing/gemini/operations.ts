/** @internal The long-running operations of tuned models: get, list and cancel. */
import { fail, type Reply } from "../shared/http.js";
import { pageOfQuery } from "../shared/pagination.js";
import { findModel, type GeminiFake, type TunedModelRecord } from "./state.js";
import { METADATA_TYPE, TUNED_MODEL_TYPE, tunedModelJson } from "./tuned-models.js";

/** The operation as `GET …/operations/{op}` returns it. */
export function operationJson(fake: GeminiFake, record: TunedModelRecord): Record<string, unknown> {
  const job = record.job;
  const totalSteps = job.totalSteps ?? 1;
  const metadata: Record<string, unknown> = {
    "@type": METADATA_TYPE,
    totalSteps,
    tunedModel: record.name,
  };
  if (job.completedSteps > 0) {
    metadata.completedSteps = job.completedSteps;
    metadata.completedPercent = Math.round((job.completedSteps / totalSteps) * 1e6) / 1e4;
    metadata.snapshots = record.snapshots.map((snapshot) => ({ ...snapshot }));
  }
  const json: Record<string, unknown> = { name: record.operationName, metadata };
  if (job.phase === "succeeded") {
    json.done = true;
    json.response = { "@type": TUNED_MODEL_TYPE, ...tunedModelJson(fake, record) };
  } else if (job.terminal) {
    json.done = true;
    json.error = { ...job.error, details: [] };
  }
  return json;
}

/** The tuned model whose operation is `tunedModels/{model}/operations/{op}`, or 404. */
export function findOperation(
  fake: GeminiFake,
  modelId: string,
  operationId: string,
): TunedModelRecord {
  const record = fake.models.get(modelId);
  const name = `tunedModels/${modelId}/operations/${operationId}`;
  if (record === undefined || record.operationName !== name)
    fail("NOT_FOUND", `Operation ${name} does not exist.`);
  return record;
}

/** `GET tunedModels/{id}/operations`: the model's one tuning operation. */
export function listOperations(
  fake: GeminiFake,
  modelId: string,
  query: Record<string, unknown>,
): Reply {
  const record = findModel(fake, modelId);
  const { items, nextPageToken } = pageOfQuery(
    [record],
    query,
    typeof query.filter === "string" ? query.filter : "",
    10,
  );
  const body: Record<string, unknown> = {
    operations: items.map((item) => operationJson(fake, item)),
  };
  if (nextPageToken !== undefined) body.nextPageToken = nextPageToken;
  return { status: 200, schema: "ListOperationsResponse", body };
}

/**
 * `POST v1/…/operations/{op}:cancel`: answered at once; the job stops `cancelLatencySteps`
 * steps later (or finishes first). Cancelling an ended job changes nothing.
 */
export function cancelOperation(fake: GeminiFake, record: TunedModelRecord): Reply {
  record.job.cancel(
    fake.settings.cancelLatencySteps * fake.settings.stepDurationMs,
    fake.clock.now(),
    { code: 1, message: "Operation cancelled." },
  );
  return { status: 200, schema: "Empty", body: {} };
}
