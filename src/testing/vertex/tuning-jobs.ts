/**
 * @internal Tuning jobs: create (with the checks Vertex AI makes), get, list, cancel, the
 * simulated run (data read when the job leaves the queue, `tuningDataStats`, steps) and the
 * JSON view.
 */
import { fakeTokenCount } from "../shared/generate.js";
import { type FieldViolation, RPC_CODES } from "../shared/google-errors.js";
import { fail, invalid, isRecord, type Reply } from "../shared/http.js";
import { plannedFailure, type SimulatedError, SimulatedJob } from "../shared/job-simulation.js";
import { pageOfQuery } from "../shared/pagination.js";
import { parseFilter } from "./list-filter.js";
import type { JobRecord, TrainingExample, VertexFake } from "./state.js";

/** Base models the fake accepts for tuning unless told otherwise. */
export const DEFAULT_VERTEX_BASE_MODELS: readonly string[] = [
  "gemini-2.5-flash",
  "gemini-2.5-flash-lite",
  "gemini-2.5-pro",
  "gemini-2.0-flash-001",
  "gemini-2.0-flash-lite-001",
];

const LABEL = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;
const GCS_URI = /^gs:\/\/[^/]+\/.+/;

const STATE_OF = {
  queued: "JOB_STATE_PENDING",
  running: "JOB_STATE_RUNNING",
  cancelling: "JOB_STATE_CANCELLING",
  succeeded: "JOB_STATE_SUCCEEDED",
  failed: "JOB_STATE_FAILED",
  cancelled: "JOB_STATE_CANCELLED",
} as const;

/** `POST {parent}/tuningJobs` with a canonical `TuningJob` body. */
export function createTuningJob(
  fake: VertexFake,
  project: string,
  location: string,
  body: Record<string, unknown>,
): Reply {
  const violations: FieldViolation[] = [];
  const require = (field: string, description: string) => violations.push({ field, description });
  const baseModel = typeof body.baseModel === "string" ? body.baseModel : "";
  if (baseModel === "" && body.preTunedModel === undefined) {
    require("tuning_job.base_model", "A base model is required.");
  }
  const spec = isRecord(body.supervisedTuningSpec) ? body.supervisedTuningSpec : undefined;
  if (spec === undefined)
    require("tuning_job.supervised_tuning_spec", "A tuning spec is required.");
  const training = typeof spec?.trainingDatasetUri === "string" ? spec.trainingDatasetUri : "";
  if (spec !== undefined && !GCS_URI.test(training)) {
    require("tuning_job.supervised_tuning_spec.training_dataset_uri", "Must be a gs:// URI of a JSONL file.");
  }
  const validationUri = spec?.validationDatasetUri;
  if (typeof validationUri === "string" && !GCS_URI.test(validationUri)) {
    require("tuning_job.supervised_tuning_spec.validation_dataset_uri", "Must be a gs:// URI of a JSONL file.");
  }
  const hyper = isRecord(spec?.hyperParameters) ? spec.hyperParameters : {};
  if (typeof hyper.epochCount === "string" && !(Number(hyper.epochCount) > 0)) {
    require("tuning_job.supervised_tuning_spec.hyper_parameters.epoch_count", "epoch_count must be positive.");
  }
  if (typeof hyper.learningRateMultiplier === "number" && !(hyper.learningRateMultiplier > 0)) {
    require("tuning_job.supervised_tuning_spec.hyper_parameters.learning_rate_multiplier", "learning_rate_multiplier must be positive.");
  }
  const labels = isRecord(body.labels) ? (body.labels as Record<string, string>) : {};
  for (const [key, value] of Object.entries(labels)) {
    if (!/^\p{Ll}/u.test(key) || !LABEL.test(key) || !LABEL.test(String(value))) {
      require(`tuning_job.labels.${key}`, "Label keys and values must be ≤ 63 lowercase letters, digits, '_' or '-'; keys start with a letter.");
    }
  }
  if (
    typeof body.tunedModelDisplayName === "string" &&
    [...body.tunedModelDisplayName].length > 128
  ) {
    require("tuning_job.tuned_model_display_name", "At most 128 characters.");
  }
  if (violations.length > 0) {
    invalid(violations.map((v) => `${v.field}: ${v.description}`).join("\n"), violations);
  }
  const baseModels = fake.settings.baseModels;
  if (!baseModels.includes(baseModel.replace(/^publishers\/google\/models\//, ""))) {
    invalid(`Base model ${baseModel} is not supported for supervised tuning.`, [
      { field: "tuning_job.base_model", description: `Supported: ${baseModels.join(", ")}` },
    ]);
  }
  for (const uri of [training, validationUri].filter((u): u is string => typeof u === "string")) {
    if (!fake.objects.has(uri)) {
      fail(
        "FAILED_PRECONDITION",
        `Failed to read ${uri}: the object does not exist or the Vertex AI service agent cannot read it.`,
      );
    }
  }
  const id = fake.newId();
  const epochCount =
    typeof hyper.epochCount === "string"
      ? Number(hyper.epochCount)
      : fake.settings.defaultEpochCount;
  const planned = fake.faults.takeTuningFailure(id);
  const record: JobRecord = {
    id,
    name: `projects/${project}/locations/${location}/tuningJobs/${id}`,
    project,
    location,
    request: body,
    createTime: fake.clock.iso(),
    epochCount,
    examples: [],
    stats: undefined,
    job: undefined as unknown as SimulatedJob,
    endpointId: fake.newId(),
    modelId: fake.newId(),
  };
  record.job = new SimulatedJob(
    {
      createdAtMs: fake.clock.now(),
      stepMs: fake.settings.stepDurationMs,
      queuedMs: fake.settings.queuedSteps * fake.settings.stepDurationMs,
      ...plannedFailure(planned),
    },
    { start: () => beginRunning(fake, record) },
  );
  fake.jobs.set(id, record);
  return { status: 200, schema: "GoogleCloudAiplatformV1TuningJob", body: jobJson(record) };
}

/** Leaving the queue: read and check the data, compute `tuningDataStats`; the step count. */
function beginRunning(fake: VertexFake, record: JobRecord): number | SimulatedError {
  const spec = record.request.supervisedTuningSpec as Record<string, unknown>;
  const parsed = readDataset(fake, String(spec.trainingDatasetUri));
  if (typeof parsed === "string") return { code: RPC_CODES.INVALID_ARGUMENT, message: parsed };
  if (typeof spec.validationDatasetUri === "string") {
    const validation = readDataset(fake, spec.validationDatasetUri);
    if (typeof validation === "string") {
      return { code: RPC_CODES.INVALID_ARGUMENT, message: `Validation dataset: ${validation}` };
    }
  }
  record.examples = parsed;
  const totalSteps = Math.max(
    1,
    Math.ceil((parsed.length * record.epochCount) / fake.settings.batchSize),
  );
  const truncated: string[] = [];
  let characters = 0;
  const inputTokens: number[] = [];
  const outputTokens: number[] = [];
  parsed.forEach((example, index) => {
    const chars = (example.system?.length ?? 0) + example.input.length + example.output.length;
    characters += chars;
    if (chars > fake.settings.maxExampleChars) truncated.push(String(index));
    inputTokens.push(fakeTokenCount((example.system ?? "") + example.input));
    outputTokens.push(fakeTokenCount(example.output));
  });
  const billable = [...inputTokens, ...outputTokens].reduce((a, b) => a + b, 0) * record.epochCount;
  record.stats = {
    tuningDatasetExampleCount: String(parsed.length),
    totalTuningCharacterCount: String(characters),
    totalBillableTokenCount: String(billable),
    tuningStepCount: String(totalSteps),
    totalTruncatedExampleCount: String(truncated.length),
    ...(truncated.length > 0 ? { truncatedExampleIndices: truncated } : {}),
    userInputTokenDistribution: distribution(inputTokens),
    userOutputTokenDistribution: distribution(outputTokens),
  };
  return totalSteps;
}

/** The examples of a JSONL object, or why it cannot be used. */
function readDataset(fake: VertexFake, uri: string): TrainingExample[] | string {
  const object = fake.objects.get(uri);
  if (object === undefined) return `Failed to read ${uri}: the object does not exist.`;
  const examples: TrainingExample[] = [];
  const lines = object.text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === "") continue;
    const where = `${uri} line ${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      return `Invalid JSON at ${where}.`;
    }
    if (!isRecord(record) || !Array.isArray(record.contents) || record.contents.length < 2) {
      return `Invalid example at ${where}: "contents" must hold at least a user and a model turn.`;
    }
    const contents = record.contents as unknown[];
    const roles = contents.map((c) => (isRecord(c) ? c.role : undefined));
    if (roles.some((role) => role !== "user" && role !== "model") || roles.at(-1) !== "model") {
      return `Invalid example at ${where}: roles must be "user" or "model", ending with "model".`;
    }
    const users = contents.filter((c) => isRecord(c) && c.role === "user");
    const input = textOf(users.at(-1));
    const output = textOf(contents.at(-1));
    if (output.length === 0) return `Invalid example at ${where}: the model turn has no text.`;
    const system = isRecord(record.systemInstruction)
      ? textOf(record.systemInstruction)
      : undefined;
    examples.push({ system: system || undefined, input, output });
  }
  if (examples.length === 0) return `${uri} holds no examples.`;
  return examples;
}

/** The text of a content's parts. */
export function textOf(content: unknown): string {
  return isRecord(content) && Array.isArray(content.parts)
    ? content.parts.map((p) => (isRecord(p) && typeof p.text === "string" ? p.text : "")).join("")
    : "";
}

function distribution(values: number[]): Record<string, unknown> {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    sum: String(sum),
    min: sorted[0] ?? 0,
    max: sorted.at(-1) ?? 0,
    mean: sorted.length > 0 ? sum / sorted.length : 0,
    median: at(0.5),
    p5: at(0.05),
    p95: at(0.95),
  };
}

/** `POST {name}:cancel`: CANCELLING now, CANCELLED `cancelLatencySteps` steps later. */
export function cancelTuningJob(fake: VertexFake, record: JobRecord): Reply {
  if (record.job.terminal) {
    fail(
      "FAILED_PRECONDITION",
      `Cannot cancel tuning job ${record.name} in state ${STATE_OF[record.job.phase]}.`,
    );
  }
  record.job.cancel(
    fake.settings.cancelLatencySteps * fake.settings.stepDurationMs,
    fake.clock.now(),
    { code: RPC_CODES.CANCELLED, message: "CANCELED" },
  );
  return { status: 200, schema: "GoogleProtobufEmpty", body: {} };
}

/** The job as `GET {name}` returns it. */
export function jobJson(record: JobRecord): Record<string, unknown> {
  const request = record.request;
  const job = record.job;
  const json: Record<string, unknown> = { name: record.name };
  for (const key of [
    "baseModel",
    "tunedModelDisplayName",
    "description",
    "labels",
    "serviceAccount",
    "encryptionSpec",
  ]) {
    if (request[key] !== undefined) json[key] = request[key];
  }
  const spec = { ...(request.supervisedTuningSpec as Record<string, unknown>) };
  const hyper = { ...(isRecord(spec.hyperParameters) ? spec.hyperParameters : {}) };
  if (hyper.epochCount === undefined) hyper.epochCount = String(record.epochCount);
  spec.hyperParameters = hyper;
  json.supervisedTuningSpec = spec;
  json.state = STATE_OF[job.phase];
  json.createTime = record.createTime;
  if (job.startedAtMs !== undefined) json.startTime = new Date(job.startedAtMs).toISOString();
  if (job.endedAtMs !== undefined) json.endTime = new Date(job.endedAtMs).toISOString();
  json.updateTime = new Date(job.updatedAtMs).toISOString();
  if (job.error !== undefined) json.error = { ...job.error };
  if (record.stats !== undefined)
    json.tuningDataStats = { supervisedTuningDataStats: { ...record.stats } };
  if (job.phase === "succeeded") {
    const parent = `projects/${record.project}/locations/${record.location}`;
    json.tunedModel = {
      model: `${parent}/models/${record.modelId}@1`,
      endpoint: `${parent}/endpoints/${record.endpointId}`,
    };
  }
  if (job.startedAtMs !== undefined) {
    json.experiment = `projects/${record.project}/locations/${record.location}/metadataStores/default/contexts/tuning-experiment-${record.id}`;
  }
  return json;
}

/** `GET {parent}/tuningJobs?filter=&pageSize=&pageToken=`, newest first. */
export function listTuningJobs(
  fake: VertexFake,
  project: string,
  location: string,
  query: Record<string, unknown>,
): Reply {
  const filter = typeof query.filter === "string" ? query.filter : "";
  const match = parseFilter(filter);
  const all = [...fake.jobs.values()]
    .filter((job) => job.project === project && job.location === location)
    .reverse()
    .filter((job) => match(jobJson(job)));
  const { items, nextPageToken } = pageOfQuery(all, query, filter, 100);
  const body: Record<string, unknown> = { tuningJobs: items.map(jobJson) };
  if (nextPageToken !== undefined) body.nextPageToken = nextPageToken;
  return { status: 200, schema: "GoogleCloudAiplatformV1ListTuningJobsResponse", body };
}
