/**
 * `tunekit fake-server`: the fake Gemini API (or, with `--vertex`, the fake Vertex AI +
 * Cloud Storage service) from `tunekit/testing` on a real port, for clients in any language —
 * Google's own SDKs included. Flags set the fakes' behaviours: which base models tune, how fast
 * jobs move, the v1beta cancel binding, injected faults. Runs until interrupted (Ctrl-C /
 * SIGTERM), then closes cleanly.
 */
import type { Command } from "commander";
import { InvalidOptionError } from "../../core/errors.js";
import { type FakeRoute, GEMINI_ROUTES } from "../../testing/gemini/routes.js";
import { startFakeGeminiServer } from "../../testing/gemini/server.js";
import type { FaultInjector, FaultSpec } from "../../testing/shared/faults.js";
import { VERTEX_ROUTES, type VertexRoute } from "../../testing/vertex/routes.js";
import { startFakeVertexServer } from "../../testing/vertex/server.js";
import { optionalNumber, parseNumber } from "../flags.js";
import type { Output } from "../output.js";

export interface FakeServerFlags {
  vertex?: boolean;
  port?: string;
  host?: string;
  apiKey?: string;
  accessToken?: string;
  project?: string;
  stepsPerPoll?: string;
  stepMs?: string;
  queuedSteps?: string;
  cancelLatency?: string;
  tuning?: boolean;
  tunableBase?: string[];
  v1betaCancel?: boolean;
  fault?: string[];
  failAtStep?: string;
  seed?: string;
}

/** Adds the command's description and flags to `command` (program.ts wires the action). */
export function defineFakeServerCommand(command: Command): Command {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  return command
    .description(
      "run a fake Google service from tunekit/testing on a local port: the Gemini API (default) or, with --vertex, Vertex AI tuning + Cloud Storage uploads",
    )
    .option("--vertex", "serve the fake Vertex AI (v1 and v1beta1) + Cloud Storage instead")
    .option("-p, --port <port>", "port to listen on (default: a free one)")
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--api-key <key>", "Gemini: the API key clients must send", "test-api-key")
    .option(
      "--access-token <token>",
      "Vertex: the bearer token clients must send",
      "test-access-token",
    )
    .option("--project <id>", "Vertex: serve only this project")
    .option("--steps-per-poll <n>", "tuning steps a job advances per status poll (0: manual)", "5")
    .option("--step-ms <ms>", "fake time one tuning step takes, in milliseconds", "1000")
    .option("--queued-steps <n>", "Vertex: steps a job stays JOB_STATE_PENDING")
    .option("--cancel-latency <steps>", "steps between a cancel and the job stopping")
    .option("--no-tuning", "Gemini: behave like today's API, where no base model accepts tuning")
    .option(
      "--tunable-base <model>",
      "a base model that accepts tuning (repeatable; Gemini: models/… made tunable, Vertex: the accepted base ids)",
      collect,
    )
    .option(
      "--v1beta-cancel",
      "Gemini: also bind operation cancel under v1beta (the real API binds v1 only)",
    )
    .option(
      "--fault <spec>",
      'inject a fault (repeatable), e.g. "route=createTunedModel,status=429,times=2,retryAfter=1", "route=getOperation,drop", "route=createTuningJob,delay=3000", "route=createTunedModel,lose"',
      collect,
    )
    .option("--fail-at-step <n>", "the next tuning job fails at this step")
    .option("--seed <n>", "seed of the fake's id generator");
}

/** Runs the fake server until `stop` fires. */
export async function fakeServerCommand(
  flags: FakeServerFlags,
  out: Output,
  stop: AbortSignal,
): Promise<number> {
  const port =
    flags.port === undefined
      ? 0
      : parseNumber("--port", flags.port, { integer: true, min: 0, max: 65535 });
  const host = flags.host ?? "127.0.0.1";
  const common = {
    port,
    host,
    stepsPerPoll: parseNumber("--steps-per-poll", flags.stepsPerPoll ?? "5", {
      integer: true,
      min: 0,
    }),
    stepDurationMs: parseNumber("--step-ms", flags.stepMs ?? "1000", { min: 1 }),
    ...numberOption("cancelLatencySteps", "--cancel-latency", flags.cancelLatency),
    ...numberOption("seed", "--seed", flags.seed),
  };
  const failAtStep = optionalNumber("--fail-at-step", flags.failAtStep, { integer: true, min: 1 });

  if (flags.vertex) {
    const routes = VERTEX_ROUTES.map((route) => route.name);
    const faults = (flags.fault ?? []).map((spec) => parseFault(spec, routes));
    const server = await startFakeVertexServer({
      ...common,
      accessToken: flags.accessToken ?? "test-access-token",
      ...(flags.project ? { project: flags.project } : {}),
      ...(flags.tunableBase?.length ? { baseModels: flags.tunableBase } : {}),
      ...numberOption("queuedSteps", "--queued-steps", flags.queuedSteps),
    });
    inject(server.service.faults, faults, failAtStep);
    const token = flags.accessToken ?? "test-access-token";
    out.result({ service: "vertex", url: server.url, port: server.port, accessToken: token }, () =>
      [
        `fake Vertex AI + Cloud Storage listening on ${server.url} (REST over plain HTTP; v1 and v1beta1)`,
        `  token: send "Authorization: Bearer ${token}"`,
        `  try: TUNEKIT_VERTEX_BASE_URL=${server.url} TUNEKIT_STORAGE_BASE_URL=${server.url} TUNEKIT_VERTEX_ACCESS_TOKEN=${token} GOOGLE_CLOUD_PROJECT=p TUNEKIT_VERTEX_STAGING_URI=gs://bucket/tuning tunekit tune data.jsonl --backend vertex`,
        "  Ctrl-C stops it",
      ].join("\n"),
    );
    await untilStopped(stop);
    await server.close();
  } else {
    const routes = GEMINI_ROUTES.map((route) => route.name);
    const faults = (flags.fault ?? []).map((spec) => parseFault(spec, routes));
    const key = flags.apiKey ?? "test-api-key";
    const server = await startFakeGeminiServer({
      ...common,
      apiKey: key,
      tuningEnabled: flags.tuning !== false,
      ...(flags.tunableBase?.length ? { tunableBaseModels: flags.tunableBase } : {}),
      ...(flags.v1betaCancel ? { cancelOnV1beta: true } : {}),
    });
    inject(server.service.faults, faults, failAtStep);
    out.result({ service: "gemini", url: server.url, port: server.port, apiKey: key }, () =>
      [
        `fake Gemini API listening on ${server.url} (REST over plain HTTP)`,
        `  API key: ${key} (send it in the x-goog-api-key header)`,
        `  try: GEMINI_API_KEY=${key} tunekit tune data.jsonl --backend gemini --base-url ${server.url}`,
        "  Ctrl-C stops it",
      ].join("\n"),
    );
    await untilStopped(stop);
    await server.close();
  }
  out.note("fake server stopped");
  return 0;
}

function numberOption<K extends string>(
  key: K,
  flag: string,
  value: string | undefined,
): Partial<Record<K, number>> {
  const parsed = optionalNumber(flag, value, { integer: true, min: 0 });
  return parsed === undefined ? {} : ({ [key]: parsed } as Record<K, number>);
}

function untilStopped(stop: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (stop.aborted) resolve();
    stop.addEventListener("abort", () => resolve(), { once: true });
  });
}

function inject<R extends string>(
  injector: FaultInjector<R>,
  faults: readonly FaultSpec<R>[],
  failAtStep: number | undefined,
): void {
  for (const fault of faults) injector.inject(fault);
  if (failAtStep !== undefined) injector.failTuningAtStep({ atStep: failAtStep });
}

/**
 * Parses `--fault` specs: comma-separated `key=value` pairs (`route`, `method`, `times` — a
 * number or `all` —, `skip`, `status`, `retryAfter`, `message`, `delay`) plus the bare words
 * `drop` and `lose`.
 */
export function parseFault<R extends string>(spec: string, routes: readonly R[]): FaultSpec<R> {
  const fields = new Map<string, string>();
  for (const part of spec.split(",")) {
    const [rawKey, ...rest] = part.split("=");
    const key = (rawKey ?? "").trim();
    if (key === "") continue;
    fields.set(key, rest.join("=").trim());
  }
  const bad = (why: string): never => {
    throw new InvalidOptionError("--fault", `--fault "${spec}": ${why}`, {
      hint: 'e.g. --fault "route=createTunedModel,status=429,times=2,retryAfter=1"',
    });
  };
  const target: { route?: R; method?: string; times?: number; skip?: number } = {};
  const route = fields.get("route");
  if (route !== undefined) {
    if (!routes.includes(route as R)) bad(`unknown route "${route}" (known: ${routes.join(", ")})`);
    target.route = route as R;
  }
  if (fields.has("method")) target.method = (fields.get("method") as string).toUpperCase();
  const times = fields.get("times");
  if (times !== undefined) {
    target.times =
      times === "all"
        ? Number.POSITIVE_INFINITY
        : parseNumber("--fault times", times, { integer: true, min: 1 });
  }
  const skip = fields.get("skip");
  if (skip !== undefined)
    target.skip = parseNumber("--fault skip", skip, { integer: true, min: 0 });
  const kinds = ["status", "drop", "lose", "delay"].filter((kind) => fields.has(kind));
  if (kinds.length !== 1) bad("give exactly one of status=…, drop, lose, delay=…");
  if (fields.has("drop")) return { ...target, kind: "drop" };
  if (fields.has("lose")) return { ...target, kind: "lose-response" };
  if (fields.has("delay")) {
    return {
      ...target,
      kind: "delay",
      ms: parseNumber("--fault delay", fields.get("delay") as string, { min: 0 }),
    };
  }
  const status = parseNumber("--fault status", fields.get("status") as string, {
    integer: true,
    min: 400,
    max: 599,
  });
  const retryAfter = fields.get("retryAfter");
  return {
    ...target,
    kind: "error",
    status,
    ...(retryAfter === undefined
      ? {}
      : { retryAfterSeconds: parseNumber("--fault retryAfter", retryAfter, { min: 0 }) }),
    ...(fields.get("message") ? { message: fields.get("message") as string } : {}),
  };
}

export type { FakeRoute, VertexRoute };
