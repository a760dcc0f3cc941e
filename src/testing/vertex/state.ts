/**
 * @internal What the resource modules of the fake Vertex service share: options, clock,
 * stored tuning jobs (each with its simulated timeline) and Cloud Storage objects.
 */
import type { FakeClock } from "../shared/clock.js";
import type { FaultInjector } from "../shared/faults.js";
import type { FakeResponder } from "../shared/generate.js";
import { fail } from "../shared/http.js";
import type { SimulatedJob } from "../shared/job-simulation.js";
import type { VertexRoute } from "./routes.js";

/** One stored Cloud Storage object. */
export interface FakeStorageObject {
  bucket: string;
  name: string;
  contentType: string;
  /** The object's bytes, decoded as UTF-8. */
  text: string;
  size: number;
  generation: string;
  timeCreated: string;
}

/** One training example as the fake reads it from the JSONL. */
export interface TrainingExample {
  system: string | undefined;
  input: string;
  output: string;
}

/** A stored tuning job. */
export interface JobRecord {
  id: string;
  name: string;
  project: string;
  location: string;
  /** The create body, canonical. */
  request: Record<string, unknown>;
  createTime: string;
  epochCount: number;
  examples: TrainingExample[];
  stats: Record<string, unknown> | undefined;
  job: SimulatedJob;
  endpointId: string;
  modelId: string;
}

/** The options the resource modules read. */
export interface VertexFakeSettings {
  stepDurationMs: number;
  queuedSteps: number;
  batchSize: number;
  defaultEpochCount: number;
  maxExampleChars: number;
  cancelLatencySteps: number;
  respond: FakeResponder | undefined;
  baseModels: readonly string[];
  buckets: readonly string[] | undefined;
}

/** @internal The shared state of one fake Vertex service. */
export interface VertexFake {
  readonly clock: FakeClock;
  readonly faults: FaultInjector<VertexRoute>;
  readonly jobs: Map<string, JobRecord>;
  readonly objects: Map<string, FakeStorageObject>;
  readonly settings: VertexFakeSettings;
  /** A status poll: in auto mode it advances the job. */
  poll(job: SimulatedJob): void;
  newId(): string;
}

/** The job `projects/{p}/locations/{l}/tuningJobs/{id}`, or 404. */
export function findJob(
  fake: VertexFake,
  project: string,
  location: string,
  id: string,
): JobRecord {
  const job = fake.jobs.get(id);
  if (job === undefined || job.project !== project || job.location !== location) {
    fail(
      "NOT_FOUND",
      `The TuningJob does not exist: projects/${project}/locations/${location}/tuningJobs/${id}`,
    );
  }
  return job;
}

/** A status poll of `record` (in auto mode it advances the job). */
export function pollJob(fake: VertexFake, record: JobRecord): JobRecord {
  fake.poll(record.job);
  return record;
}
