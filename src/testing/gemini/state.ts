/**
 * @internal What the resource modules of the fake Gemini service share: its options, clock,
 * codec, stored tuned models (each with its simulated tuning job and permissions) and ids.
 */
import type { FakeClock } from "../shared/clock.js";
import type { FaultInjector } from "../shared/faults.js";
import type { FakeResponder } from "../shared/generate.js";
import { fail } from "../shared/http.js";
import type { SimulatedJob } from "../shared/job-simulation.js";
import type { ProtoJsonCodec } from "../shared/proto-json.js";
import type { FakeBaseModel } from "./base-models.js";
import type { FakeRoute } from "./routes.js";

/** One loss snapshot of a tuning job (`TuningSnapshot`). */
export interface Snapshot {
  step: number;
  epoch: number;
  meanLoss: number;
  computeTime: string;
}

/** One grant on a tuned model (`Permission`). */
export interface PermissionRecord {
  name: string;
  granteeType: "USER" | "GROUP" | "EVERYONE";
  emailAddress: string | undefined;
  role: "READER" | "WRITER" | "OWNER";
}

/** A stored tuned model and the tuning run that makes it. */
export interface TunedModelRecord {
  id: string;
  name: string;
  operationName: string;
  baseModel: string;
  sourceTunedModel: string | undefined;
  displayName: string | undefined;
  description: string | undefined;
  temperature: number | undefined;
  topP: number | undefined;
  topK: number | undefined;
  readerProjectNumbers: string[] | undefined;
  hyperparameters: Record<string, number>;
  examples: Array<{ textInput: string; output: string }>;
  createTime: string;
  updateTime: string;
  epochCount: number;
  snapshots: Snapshot[];
  job: SimulatedJob;
  permissions: PermissionRecord[];
}

/** The options the resource modules read. */
export interface GeminiFakeSettings {
  stepDurationMs: number;
  cancelLatencySteps: number;
  respond: FakeResponder | undefined;
  ownerEmail: string;
}

/** @internal The shared state of one fake Gemini service. */
export interface GeminiFake {
  readonly clock: FakeClock;
  readonly codec: ProtoJsonCodec;
  readonly faults: FaultInjector<FakeRoute>;
  readonly models: Map<string, TunedModelRecord>;
  readonly baseModels: FakeBaseModel[];
  readonly settings: GeminiFakeSettings;
  /** A status poll: in auto mode it advances the job. */
  poll(job: SimulatedJob): void;
  randomId(length: number, digitsFirst: boolean): string;
}

/** The tuned model `tunedModels/{id}`, or 404 (worded as generate's 404 when `method` is given). */
export function findModel(
  fake: GeminiFake,
  id: string,
  method?: string,
  version?: string,
): TunedModelRecord {
  const record = fake.models.get(id);
  if (record === undefined) {
    if (method !== undefined) {
      fail(
        "NOT_FOUND",
        `tunedModels/${id} is not found for API version ${version ?? "v1beta"}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
      );
    }
    fail("NOT_FOUND", `Tuned model tunedModels/${id} does not exist.`);
  }
  return record;
}

/** A status poll of `record` (in auto mode it advances the job). */
export function pollJob(fake: GeminiFake, record: TunedModelRecord): TunedModelRecord {
  fake.poll(record.job);
  return record;
}
