/**
 * @internal Tuned models: create (with the checks the real service makes), get, list, patch,
 * delete and transferOwnership, and their JSON views.
 */
import type { FieldViolation } from "../shared/google-errors.js";
import { fail, invalid, isRecord, type Reply } from "../shared/http.js";
import { plannedFailure, SimulatedJob } from "../shared/job-simulation.js";
import { pageOfQuery } from "../shared/pagination.js";
import { TUNABLE_BASE_MODEL } from "./base-models.js";
import { findModel, type GeminiFake, type TunedModelRecord } from "./state.js";

export const METADATA_TYPE =
  "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata";
export const TUNED_MODEL_TYPE =
  "type.googleapis.com/google.ai.generativelanguage.v1beta.TunedModel";
const TUNED_MODEL_ID = /^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$/;
const MUTABLE_FIELDS = new Set([
  "displayName",
  "description",
  "temperature",
  "topP",
  "topK",
  "readerProjectNumbers",
]);

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** A deterministic, strictly decreasing training loss from about 4.4 down to about 0.7. */
function fakeLoss(step: number, totalSteps: number): number {
  return Math.round((0.5 + 4 * Math.exp((-3 * step) / totalSteps)) * 1e6) / 1e6;
}

/** `POST tunedModels[?tunedModelId=]` with a canonical `TunedModel` body. */
export function createTunedModel(
  fake: GeminiFake,
  body: Record<string, unknown>,
  requestedId: string | undefined,
): Reply {
  const task = isRecord(body.tuningTask) ? body.tuningTask : undefined;
  const hyper = task !== undefined && isRecord(task.hyperparameters) ? task.hyperparameters : {};
  const violations: FieldViolation[] = [];
  const require = (field: string, description: string) => violations.push({ field, description });

  if (requestedId !== undefined && !TUNED_MODEL_ID.test(requestedId)) {
    invalid(
      `tuned_model_id "${requestedId}" is invalid: it must match [a-z]([a-z0-9-]{0,38}[a-z0-9])? (at most 40 characters).`,
      [{ field: "tuned_model_id", description: "must match [a-z]([a-z0-9-]{0,38}[a-z0-9])?" }],
    );
  }
  if ("learningRate" in hyper && "learningRateMultiplier" in hyper) {
    invalid(
      "Invalid value at 'tuned_model.tuning_task.hyperparameters': oneof field 'learning_rate_option' is already set. Cannot set 'learningRateMultiplier'.",
      [
        {
          field: "tuned_model.tuning_task.hyperparameters.learning_rate_multiplier",
          description:
            "Only one of learning_rate and learning_rate_multiplier may be set (oneof learning_rate_option).",
        },
      ],
    );
  }
  const hasBase = typeof body.baseModel === "string" && body.baseModel.length > 0;
  const source = isRecord(body.tunedModelSource) ? body.tunedModelSource : undefined;
  if (hasBase && source !== undefined) {
    invalid(
      "Invalid value at 'tuned_model': oneof field 'source_model' is already set. Cannot set 'tunedModelSource'.",
      [
        {
          field: "tuned_model.tuned_model_source",
          description: "Only one of base_model and tuned_model_source may be set.",
        },
      ],
    );
  }
  if (!hasBase && source === undefined)
    require("tuned_model.base_model", "A base model (or tuned_model_source) is required.");
  if (task === undefined)
    require("tuned_model.tuning_task", "Required field tuning_task is missing.");
  const data = task !== undefined && isRecord(task.trainingData) ? task.trainingData : undefined;
  if (task !== undefined && data === undefined) {
    require("tuned_model.tuning_task.training_data", "Required field training_data is missing.");
  }
  const examplesSet = data !== undefined && isRecord(data.examples) ? data.examples : undefined;
  if (data !== undefined && examplesSet === undefined) {
    require("tuned_model.tuning_task.training_data.examples", "Training data must contain inline examples.");
  }
  if (examplesSet !== undefined && Array.isArray(examplesSet.multiturnExamples)) {
    require("tuned_model.tuning_task.training_data.examples.multiturn_examples", "Multi-turn examples are not supported for this base model; use examples with text_input and output.");
  }
  const wireExamples = (
    examplesSet !== undefined && Array.isArray(examplesSet.examples) ? examplesSet.examples : []
  ) as Array<{ textInput?: string; output?: string }>;
  if (
    examplesSet !== undefined &&
    wireExamples.length === 0 &&
    !Array.isArray(examplesSet.multiturnExamples)
  ) {
    require("tuned_model.tuning_task.training_data.examples.examples", "At least one training example is required.");
  }
  wireExamples.forEach((example, index) => {
    const at = `tuned_model.tuning_task.training_data.examples.examples[${index}]`;
    if (typeof example.textInput !== "string")
      require(`${at}.text_input`, "Required field text_input is missing.");
    if (typeof example.output !== "string" || example.output.length === 0) {
      require(`${at}.output`, "Required field output is missing or empty.");
    }
  });
  if (typeof body.displayName === "string" && body.displayName.length > 40) {
    require("tuned_model.display_name", "The display name must be at most 40 characters.");
  }
  if (typeof body.temperature === "number" && (body.temperature < 0 || body.temperature > 1)) {
    require("tuned_model.temperature", "temperature must be in [0.0, 1.0].");
  }
  for (const field of ["epochCount", "batchSize", "learningRate", "learningRateMultiplier"]) {
    const value = hyper[field];
    if (typeof value === "number" && value <= 0) {
      require(`tuned_model.tuning_task.hyperparameters.${snakeCase(field)}`, `${field} must be positive.`);
    }
  }
  if (violations.length > 0) {
    invalid(
      violations.map((violation) => `${violation.field}: ${violation.description}`).join("\n"),
      violations,
    );
  }

  let baseModel: string;
  let sourceTunedModel: string | undefined;
  if (source !== undefined) {
    const sourceName = String(source.tunedModel ?? "");
    const sourceRecord = fake.models.get(sourceName.replace(/^tunedModels\//, ""));
    if (sourceRecord === undefined) fail("NOT_FOUND", `Tuned model ${sourceName} does not exist.`);
    if (sourceRecord.job.phase !== "succeeded") {
      fail(
        "FAILED_PRECONDITION",
        `Tuned model ${sourceName} is not ACTIVE and cannot be used as a tuning source.`,
      );
    }
    baseModel = sourceRecord.baseModel;
    sourceTunedModel = sourceRecord.name;
  } else {
    const baseId = String(body.baseModel).replace(/^models\//, "");
    const base = fake.baseModels.find((candidate) => candidate.name === `models/${baseId}`);
    if (base === undefined) {
      fail(
        "NOT_FOUND",
        `${String(body.baseModel)} is not found for API version v1beta, or is not supported for createTunedModel. Call ListModels to see the list of available models and their supported methods.`,
      );
    }
    if (!base.supportedGenerationMethods.includes("createTunedModel")) {
      invalid(
        `Base model ${base.name} does not support tuning (createTunedModel is not in its supportedGenerationMethods).`,
        [
          {
            field: "tuned_model.base_model",
            description: `${base.name} does not support createTunedModel.`,
          },
        ],
      );
    }
    baseModel = base.name;
  }

  const id =
    requestedId ??
    generateId(fake, typeof body.displayName === "string" ? body.displayName : undefined);
  if (fake.models.has(id)) fail("ALREADY_EXISTS", `Tuned model tunedModels/${id} already exists.`);
  const examples = wireExamples.map((example) => ({
    textInput: example.textInput ?? "",
    output: example.output ?? "",
  }));
  const record = newRecord(fake, id, body, examples, sourceTunedModel, baseModel);
  return {
    status: 200,
    schema: "Operation",
    body: {
      name: record.operationName,
      metadata: {
        "@type": METADATA_TYPE,
        totalSteps: record.job.totalSteps,
        tunedModel: record.name,
      },
    },
  };
}

/** Stores a new tuned model whose tuning starts now (or at `createdAtMs`). */
export function newRecord(
  fake: GeminiFake,
  id: string,
  body: Record<string, unknown>,
  examples: Array<{ textInput: string; output: string }>,
  sourceTunedModel: string | undefined,
  baseModel = String(body.baseModel ?? TUNABLE_BASE_MODEL.name),
  createdAtMs = fake.clock.now(),
): TunedModelRecord {
  const task = isRecord(body.tuningTask) ? body.tuningTask : {};
  const hyper = isRecord(task.hyperparameters)
    ? (task.hyperparameters as Record<string, number>)
    : {};
  const epochCount = hyper.epochCount ?? 5;
  const batchSize = hyper.batchSize ?? (examples.length < 100 ? 4 : 16);
  const hyperparameters: Record<string, number> = { epochCount, batchSize };
  if (hyper.learningRateMultiplier !== undefined)
    hyperparameters.learningRateMultiplier = hyper.learningRateMultiplier;
  else
    hyperparameters.learningRate = hyper.learningRate ?? (examples.length < 100 ? 0.0002 : 0.001);
  const created = new Date(createdAtMs).toISOString();
  const totalSteps = Math.max(1, Math.ceil((examples.length * epochCount) / batchSize));
  const name = `tunedModels/${id}`;
  const operationName = `${name}/operations/${fake.randomId(12, false)}`;
  const planned = fake.faults.takeTuningFailure(id);
  const snapshots: TunedModelRecord["snapshots"] = [];
  const job = new SimulatedJob(
    {
      createdAtMs,
      stepMs: fake.settings.stepDurationMs,
      totalSteps,
      ...plannedFailure(planned),
    },
    {
      step: (step, atMs) =>
        snapshots.push({
          step,
          epoch: Math.min(epochCount, Math.ceil((step * epochCount) / totalSteps)),
          meanLoss: fakeLoss(step, totalSteps),
          computeTime: new Date(atMs).toISOString(),
        }),
    },
  );
  const record: TunedModelRecord = {
    id,
    name,
    operationName,
    baseModel,
    sourceTunedModel,
    displayName: typeof body.displayName === "string" ? body.displayName : undefined,
    description: typeof body.description === "string" ? body.description : undefined,
    temperature: typeof body.temperature === "number" ? body.temperature : undefined,
    topP: typeof body.topP === "number" ? body.topP : undefined,
    topK: typeof body.topK === "number" ? body.topK : undefined,
    readerProjectNumbers: Array.isArray(body.readerProjectNumbers)
      ? (body.readerProjectNumbers as string[])
      : undefined,
    hyperparameters,
    examples,
    createTime: created,
    updateTime: created,
    epochCount,
    snapshots,
    job,
    permissions: [
      {
        name: `${name}/permissions/${fake.randomId(12, false)}`,
        granteeType: "USER",
        emailAddress: fake.settings.ownerEmail,
        role: "OWNER",
      },
    ],
  };
  fake.models.set(id, record);
  return record;
}

function generateId(fake: GeminiFake, displayName: string | undefined): string {
  const words = (displayName ?? "")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
  let stem = words
    .join("-")
    .replace(/^[^a-z]+/, "")
    .slice(0, 33)
    .replace(/-+$/, "");
  for (;;) {
    const id = stem.length > 0 ? `${stem}-${fake.randomId(5, true)}` : fake.randomId(11, false);
    if (!fake.models.has(id)) return id;
    stem = stem.slice(0, 30);
  }
}

/** `TunedModel.state` of a record. */
export function modelState(record: TunedModelRecord): "CREATING" | "ACTIVE" | "FAILED" {
  const phase = record.job.phase;
  if (phase === "succeeded") return "ACTIVE";
  if (phase === "failed" || phase === "cancelled") return "FAILED";
  return "CREATING";
}

/** The tuned model as `GET tunedModels/{id}` returns it. */
export function tunedModelJson(
  fake: GeminiFake,
  record: TunedModelRecord,
): Record<string, unknown> {
  const base = fake.baseModels.find((candidate) => candidate.name === record.baseModel);
  const job = record.job;
  const tuningTask: Record<string, unknown> = {
    startTime: new Date(job.startedAtMs ?? job.createdAtMs).toISOString(),
  };
  if (job.endedAtMs !== undefined) tuningTask.completeTime = new Date(job.endedAtMs).toISOString();
  if (record.snapshots.length > 0)
    tuningTask.snapshots = record.snapshots.map((snapshot) => ({ ...snapshot }));
  tuningTask.hyperparameters = { ...record.hyperparameters };
  const json: Record<string, unknown> = { name: record.name };
  if (record.sourceTunedModel !== undefined) {
    json.tunedModelSource = { tunedModel: record.sourceTunedModel, baseModel: record.baseModel };
  } else {
    json.baseModel = record.baseModel;
  }
  if (record.displayName !== undefined) json.displayName = record.displayName;
  if (record.description !== undefined) json.description = record.description;
  const temperature = record.temperature ?? base?.temperature;
  const topP = record.topP ?? base?.topP;
  const topK = record.topK ?? base?.topK;
  if (temperature !== undefined) json.temperature = temperature;
  if (topP !== undefined) json.topP = topP;
  if (topK !== undefined) json.topK = topK;
  json.state = modelState(record);
  json.createTime = record.createTime;
  json.updateTime = latest(record.updateTime, job.endedAtMs);
  json.tuningTask = tuningTask;
  if (record.readerProjectNumbers !== undefined)
    json.readerProjectNumbers = [...record.readerProjectNumbers];
  return json;
}

function latest(iso: string, ms: number | undefined): string {
  return ms !== undefined && ms > Date.parse(iso) ? new Date(ms).toISOString() : iso;
}

/** `GET tunedModels?pageSize=&pageToken=&filter=` (full-text filter over name and description). */
export function listTunedModels(fake: GeminiFake, query: Record<string, unknown>): Reply {
  const filter = typeof query.filter === "string" ? query.filter : "";
  const terms = filter
    .split(/\s+/)
    .filter((term) => term.length > 0 && !term.includes(":"))
    .map((term) => term.toLowerCase());
  const matching = [...fake.models.values()].filter((record) => {
    const text = `${record.displayName ?? ""} ${record.description ?? ""}`.toLowerCase();
    return terms.every((term) => text.includes(term));
  });
  const { items, nextPageToken } = pageOfQuery(matching, query, filter, 10);
  const body: Record<string, unknown> = {
    tunedModels: items.map((record) => tunedModelJson(fake, record)),
  };
  if (nextPageToken !== undefined) body.nextPageToken = nextPageToken;
  return { status: 200, schema: "ListTunedModelsResponse", body };
}

/** `PATCH tunedModels/{id}?updateMask=` (only the masked mutable fields change). */
export function patchTunedModel(
  fake: GeminiFake,
  record: TunedModelRecord,
  body: Record<string, unknown>,
  updateMask: string | undefined,
): Reply {
  const paths =
    updateMask === undefined
      ? Object.keys(body).filter((key) => MUTABLE_FIELDS.has(key))
      : updateMask.split(",").filter((path) => path.length > 0);
  for (const path of paths) {
    if (!MUTABLE_FIELDS.has(path)) {
      invalid(`Field "${snakeCase(path)}" cannot be updated (it is immutable or output only).`, [
        {
          field: "update_mask",
          description: `"${snakeCase(path)}" is not an updatable field of TunedModel.`,
        },
      ]);
    }
  }
  if (typeof body.displayName === "string" && body.displayName.length > 40) {
    invalid("The display name must be at most 40 characters.", [
      { field: "tuned_model.display_name", description: "at most 40 characters" },
    ]);
  }
  for (const path of paths) {
    const value = body[path];
    switch (path) {
      case "displayName":
      case "description":
        record[path] = typeof value === "string" && value.length > 0 ? value : undefined;
        break;
      case "temperature":
      case "topP":
      case "topK":
        record[path] = typeof value === "number" ? value : undefined;
        break;
      case "readerProjectNumbers":
        record.readerProjectNumbers = Array.isArray(value) ? (value as string[]) : undefined;
        break;
    }
  }
  record.updateTime = fake.clock.iso();
  return { status: 200, schema: "TunedModel", body: tunedModelJson(fake, record) };
}

/** `DELETE tunedModels/{id}`. */
export function deleteTunedModel(fake: GeminiFake, id: string): Reply {
  findModel(fake, id);
  fake.models.delete(id);
  return { status: 200, schema: "Empty", body: {} };
}

/**
 * `POST tunedModels/{id}:transferOwnership` `{emailAddress}`: the grantee becomes the owner,
 * the previous owner becomes a writer.
 */
export function transferOwnership(
  fake: GeminiFake,
  record: TunedModelRecord,
  body: Record<string, unknown>,
): Reply {
  const email = body.emailAddress;
  if (typeof email !== "string" || !email.includes("@")) {
    invalid("* TransferOwnershipRequest.email_address: email_address is required", [
      { field: "email_address", description: "A valid email address is required." },
    ]);
  }
  for (const permission of record.permissions) {
    if (permission.role === "OWNER") permission.role = "WRITER";
  }
  const existing = record.permissions.find(
    (permission) => permission.granteeType === "USER" && permission.emailAddress === email,
  );
  if (existing) existing.role = "OWNER";
  else {
    record.permissions.push({
      name: `${record.name}/permissions/${fake.randomId(12, false)}`,
      granteeType: "USER",
      emailAddress: email,
      role: "OWNER",
    });
  }
  record.updateTime = fake.clock.iso();
  return { status: 200, schema: "TransferOwnershipResponse", body: {} };
}
