/**
 * Fault-injection trials of remote tuning: one `tune()` (and `wait()`) per trial against the
 * real-HTTP fakes, with faults on the create and on the polls at every timing — a lost answer
 * (the service acted), a slow service acting after the client's timeout, 429 and 503 with
 * `Retry-After`, a connection reset before the service acted — and, for Gemini, an older model
 * already holding the requested id. After each trial (and after any slow request has
 * finished on the server) it counts:
 * - duplicates: more than one model/job made for one `tune()` call;
 * - false attaches: `tune()` returned a job that is not the one this call made;
 * - untyped errors: a rejection that is not a `TunekitError`.
 * Used by `test/reliability/remote-faults.test.ts` (CI size) and `bench/reliability/remote.ts`
 * (full size).
 */

import { Dataset } from "../../src/core/dataset/dataset.js";
import { mulberry32 } from "../../src/core/dataset/split.js";
import { isTunekitError } from "../../src/core/errors.js";
import { GeminiTuner } from "../../src/gemini/tuner.js";
import { decodeDescription } from "../../src/remote/description-metadata.js";
import {
  type FakeGeminiServer,
  type FakeVertexServer,
  type FaultHandle,
  type FaultInjector,
  type FaultSpec,
  type RecordedRequest,
  startFakeGeminiServer,
  startFakeVertexServer,
  type VertexRoute,
} from "../../src/testing/index.js";
import { REQUEST_LABEL_KEY } from "../../src/vertex/names.js";
import { VertexTuner } from "../../src/vertex/tuner.js";

/** The timings a fault can have. */
export type FaultKind = "lost" | "slow" | "429" | "503" | "reset";
export const FAULT_KINDS: readonly FaultKind[] = ["lost", "slow", "429", "503", "reset"];

/** How a run of trials is shaped. */
export interface TrialOptions {
  /** Seed of the scenario generator. */
  seed: number;
  /** Per-attempt timeout of the client (ms); a "slow" fault holds the request longer. */
  attemptTimeoutMs: number;
  /** `Retry-After` values (seconds) 429/503 faults pick from. */
  retryAfterSeconds: readonly number[];
  /** Vertex: how long a create with an unknown outcome is looked for (ms). */
  createRecoveryMs: number;
}

export const CI_OPTIONS: TrialOptions = {
  seed: 17,
  attemptTimeoutMs: 120,
  retryAfterSeconds: [0],
  createRecoveryMs: 600,
};

/** One trial's outcome. */
export interface TrialResult {
  backend: "gemini" | "vertex";
  /** The faults planned, e.g. `create:lost`, `poll:503`. */
  plan: string[];
  /** Faults that actually hit a request. */
  faultsHit: number;
  faultsByKind: Record<string, number>;
  /** `succeeded`, or the error code it ended with. */
  outcome: string;
  duplicate: boolean;
  falseAttach: boolean;
  untyped: boolean;
  /** Gemini: an older model held the requested id. */
  preexisting: boolean;
  detail?: string;
}

const dataset = Dataset.from(
  Array.from({ length: 24 }, (_, i) => ({ input: String(i), output: String(i + 1) })),
);

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length) % items.length] as T;
}

/** A fault of `kind` aimed at the `skip`+1-th matching request of `route`. */
function fault<R extends string>(
  kind: FaultKind,
  route: R | readonly R[],
  skip: number,
  options: TrialOptions,
  random: () => number,
): FaultSpec<R> {
  const target = { route, skip, times: 1 };
  switch (kind) {
    case "lost":
      return { ...target, kind: "lose-response" };
    case "slow":
      // Held past the client's timeout, then handled: the service acts after the client gave up.
      return {
        ...target,
        kind: "delay",
        ms: options.attemptTimeoutMs + 30 + Math.floor(random() * 120),
      };
    case "429":
    case "503":
      return {
        ...target,
        kind: "error",
        status: Number(kind),
        retryAfterSeconds: pick(random, options.retryAfterSeconds),
      };
    case "reset":
      return { ...target, kind: "drop" };
  }
}

/** Faults for the create: 1–3 consecutive attempts, each with its own timing. */
function createPlan(random: () => number): FaultKind[] {
  const count = 1 + Math.floor(random() * 3);
  return Array.from({ length: count }, () => pick(random, FAULT_KINDS));
}

/**
 * Fast retries and polls for a trial's client, with its own randomness (so the fault plans do
 * not depend on how many retries ran).
 */
function clientPacing(options: TrialOptions, trial: number) {
  return {
    maxRetries: 4,
    timeoutMs: options.attemptTimeoutMs,
    initialRetryDelayMs: 5,
    maxRetryDelayMs: 20,
    pollIntervalMs: 5,
    maxPollIntervalMs: 20,
    random: mulberry32(options.seed * 7919 + trial),
  };
}

/** Faults for one trial: 1–3 on consecutive create attempts, and in 60% of trials one on the polls. */
function planFaults<R extends string>(
  injector: FaultInjector<R>,
  createRoute: R,
  pollRoutes: readonly R[],
  options: TrialOptions,
  random: () => number,
): { plan: string[]; handles: FaultHandle<R>[] } {
  const plan: string[] = [];
  const handles: FaultHandle<R>[] = [];
  createPlan(random).forEach((kind, attempt) => {
    plan.push(`create:${kind}`);
    handles.push(injector.inject(fault(kind, createRoute, attempt, options, random)));
  });
  if (random() < 0.6) {
    const kind = pick(random, FAULT_KINDS);
    plan.push(`poll:${kind}`);
    handles.push(
      injector.inject(fault(kind, pollRoutes, Math.floor(random() * 2), options, random)),
    );
  }
  return { plan, handles };
}

/** Waits until the server has finished every request it received (slow ones included). */
async function settle(
  requests: readonly RecordedRequest<string>[],
  limitMs = 5_000,
): Promise<void> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (requests.every((r) => r.status !== undefined || r.outcome !== "response")) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function outcomeOf(error: unknown): { outcome: string; untyped: boolean; detail: string } {
  if (isTunekitError(error)) return { outcome: error.code, untyped: false, detail: error.message };
  return { outcome: "untyped", untyped: true, detail: String(error) };
}

/** Runs `count` Gemini trials against one real-HTTP fake. */
export async function runGeminiTrials(
  count: number,
  options: TrialOptions,
): Promise<TrialResult[]> {
  const random = mulberry32(options.seed);
  const fake: FakeGeminiServer = await startFakeGeminiServer({ apiKey: "k", tuningEnabled: true });
  const results: TrialResult[] = [];
  try {
    for (let trial = 0; trial < count; trial++) {
      fake.service.reset();
      const preexisting = random() < 0.25;
      const fixedId = preexisting || random() < 0.5 ? `trial-${trial}` : undefined;
      if (preexisting) fake.service.seedTunedModel({ id: fixedId as string, displayName: "older" });
      const { plan, handles } = planFaults(
        fake.service.faults,
        "createTunedModel",
        ["getOperation", "getTunedModel", "listOperations"],
        options,
        random,
      );
      const tuner = new GeminiTuner({
        apiKey: "k",
        baseUrl: fake.url,
        env: {},
        ...clientPacing(options, trial),
      });
      let result: Omit<TrialResult, "faultsHit" | "faultsByKind" | "duplicate" | "falseAttach">;
      let attached: string | undefined;
      try {
        const job = await tuner.tune({
          baseModel: "models/gemini-1.5-flash-001-tuning",
          dataset,
          displayName: `Trial ${trial}`,
          hyperparameters: { epochCount: 2, batchSize: 4 },
          ...(fixedId ? { gemini: { tunedModelId: fixedId } } : {}),
        });
        attached = job.tunedModelName;
        await job.wait({ timeoutMs: 20_000 });
        result = { backend: "gemini", plan, outcome: "succeeded", untyped: false, preexisting };
      } catch (error) {
        result = { backend: "gemini", plan, ...outcomeOf(error), preexisting };
      }
      await settle(fake.service.requests);
      // This call's request id: the one every create attempt carried.
      const sent = fake.service.requests.find((r) => r.route === "createTunedModel");
      const requestOf = (description: unknown) =>
        decodeDescription(description as string | undefined, "gemini-folded").request;
      const requestId = requestOf(
        (sent?.body as { description?: string } | undefined)?.description,
      );
      const made = fake.service
        .listTunedModels()
        .filter((model) => requestOf(model.description) === requestId);
      const own = attached === undefined ? undefined : fake.service.getTunedModel(attached);
      const ownRequest = requestOf(own?.description);
      results.push({
        ...result,
        faultsHit: handles.reduce((sum, h) => sum + h.hits, 0),
        faultsByKind: countHits(plan, handles),
        duplicate: made.length > 1,
        falseAttach:
          attached !== undefined && (ownRequest === undefined || ownRequest !== requestId),
      });
    }
  } finally {
    await fake.close();
  }
  return results;
}

/** Runs `count` Vertex trials against one real-HTTP fake. */
export async function runVertexTrials(
  count: number,
  options: TrialOptions,
): Promise<TrialResult[]> {
  const random = mulberry32(options.seed + 1);
  const fake: FakeVertexServer = await startFakeVertexServer({ accessToken: "t", stepsPerPoll: 5 });
  const results: TrialResult[] = [];
  try {
    for (let trial = 0; trial < count; trial++) {
      fake.service.reset();
      const { plan, handles } = planFaults(
        fake.service.faults,
        "createTuningJob",
        ["getTuningJob"],
        options,
        random,
      );
      if (random() < 0.15) {
        // The lookup after an unknown outcome fails too: the error must say where to look.
        const kind = pick(random, ["503", "reset"] as const);
        plan.push(`lookup:${kind}`);
        handles.push(
          fake.service.faults.inject({
            ...fault<VertexRoute>(kind, "listTuningJobs", 0, options, random),
            times: 4,
          }),
        );
      }
      const tuner = new VertexTuner({
        project: "p",
        location: "us-central1",
        accessToken: "t",
        stagingUri: "gs://reliability/runs",
        baseUrl: fake.url,
        storageBaseUrl: fake.url,
        env: {},
        createRecoveryMs: options.createRecoveryMs,
        ...clientPacing(options, trial),
      });
      let result: Omit<TrialResult, "faultsHit" | "faultsByKind" | "duplicate" | "falseAttach">;
      let attached: string | undefined;
      try {
        const job = await tuner.tune({
          baseModel: "gemini-2.5-flash",
          dataset,
          hyperparameters: { epochCount: 2 },
        });
        attached = job.name;
        await job.wait({ timeoutMs: 20_000 });
        result = {
          backend: "vertex",
          plan,
          outcome: "succeeded",
          untyped: false,
          preexisting: false,
        };
      } catch (error) {
        result = { backend: "vertex", plan, ...outcomeOf(error), preexisting: false };
      }
      await settle(fake.service.requests);
      const sent = fake.service.requests.find((r) => r.route === "createTuningJob");
      const label = (sent?.body as { labels?: Record<string, string> } | undefined)?.labels?.[
        REQUEST_LABEL_KEY
      ];
      const jobs = fake.service.listJobs();
      const labelled = jobs.filter(
        (job) => (job.labels as Record<string, string>)[REQUEST_LABEL_KEY] === label,
      );
      const own = attached === undefined ? undefined : fake.service.getJob(attached);
      results.push({
        ...result,
        faultsHit: handles.reduce((sum, h) => sum + h.hits, 0),
        faultsByKind: countHits(plan, handles),
        duplicate: labelled.length > 1 || jobs.length > 1,
        falseAttach:
          attached !== undefined &&
          (own === undefined ||
            (own.labels as Record<string, string>)[REQUEST_LABEL_KEY] !== label),
      });
    }
  } finally {
    await fake.close();
  }
  return results;
}

function countHits(
  plan: readonly string[],
  handles: ReadonlyArray<{ hits: number }>,
): Record<string, number> {
  const out: Record<string, number> = {};
  plan.forEach((name, index) => {
    const hits = handles[index]?.hits ?? 0;
    if (hits > 0) out[name] = (out[name] ?? 0) + hits;
  });
  return out;
}

/** Totals of a run. */
export interface TrialSummary {
  trials: number;
  faultsHit: number;
  faultsByKind: Record<string, number>;
  outcomes: Record<string, number>;
  duplicates: number;
  falseAttaches: number;
  untypedErrors: number;
  /** Gemini trials where an older model held the requested id. */
  preexistingTrials: number;
  /** … of which tune() refused with ALREADY_EXISTS (the right answer). */
  preexistingRefused: number;
  /** … of which tune() returned a job (wrong: a false attach). */
  preexistingAttached: number;
}

export function summarize(results: readonly TrialResult[]): TrialSummary {
  const summary: TrialSummary = {
    trials: results.length,
    faultsHit: 0,
    faultsByKind: {},
    outcomes: {},
    duplicates: 0,
    falseAttaches: 0,
    untypedErrors: 0,
    preexistingTrials: 0,
    preexistingRefused: 0,
    preexistingAttached: 0,
  };
  for (const result of results) {
    summary.faultsHit += result.faultsHit;
    for (const [kind, hits] of Object.entries(result.faultsByKind)) {
      summary.faultsByKind[kind] = (summary.faultsByKind[kind] ?? 0) + hits;
    }
    summary.outcomes[result.outcome] = (summary.outcomes[result.outcome] ?? 0) + 1;
    if (result.duplicate) summary.duplicates++;
    if (result.falseAttach) summary.falseAttaches++;
    if (result.untyped) summary.untypedErrors++;
    if (result.preexisting) {
      summary.preexistingTrials++;
      if (result.outcome === "already_exists") summary.preexistingRefused++;
      if (result.outcome === "succeeded") summary.preexistingAttached++;
    }
  }
  return summary;
}
