import { existsSync, statSync } from "node:fs";
import { InvalidOptionError, TuningUnavailableError } from "../core/errors.js";
import type { Tuner } from "../core/types.js";
import { GeminiTuner, type GeminiTunerOptions } from "../gemini/tuner.js";
import type { BaseWeights } from "../local/base-weights.js";
import { VertexTuner, type VertexTunerOptions } from "../vertex/tuner.js";
import { parseNumber } from "./flags.js";

/** The backends `tunekit tune --backend` accepts. */
export const BACKENDS = ["gemini", "vertex", "local"] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Connection flags every remote command takes (`--base-url`, `--poll-interval`). */
export interface RemoteFlags {
  baseUrl?: string;
  pollInterval?: string;
}

/**
 * What Ctrl-C means for a job of this backend: a remote job keeps running on the service, so
 * the CLI only stops watching (and offers to cancel); a local job runs in this process, so
 * the CLI cancels it and keeps its last checkpoint.
 */
export type InterruptPolicy = "detach" | "cancel";

/** A tuner built from the command line, with what the CLI needs to know about it. */
export interface CliBackend {
  name: BackendName;
  tuner: Tuner;
  interrupt: InterruptPolicy;
  /** The shell command that re-attaches to `job` (remote jobs only). */
  reattach?: (job: string) => string;
}

/**
 * A `GeminiTuner` from flags and environment: the key from `GEMINI_API_KEY` / `GOOGLE_API_KEY`
 * (never from a flag, so it stays out of shell history and `ps`), the base URL from
 * `--base-url` or `TUNEKIT_GEMINI_BASE_URL` (point it at `tunekit fake-server`), and a fixed
 * poll interval from `--poll-interval` / `TUNEKIT_POLL_INTERVAL` (seconds) when given.
 */
export function geminiTuner(flags: RemoteFlags, env: NodeJS.ProcessEnv): GeminiTuner {
  const options: GeminiTunerOptions = { env };
  const baseUrl = flags.baseUrl ?? (env.TUNEKIT_GEMINI_BASE_URL || undefined);
  if (baseUrl !== undefined) options.baseUrl = baseUrl;
  const interval = flags.pollInterval ?? (env.TUNEKIT_POLL_INTERVAL || undefined);
  if (interval !== undefined) {
    const ms = parseNumber("--poll-interval", interval, { min: 0.01 }) * 1000;
    // An explicit interval is kept as given: check every N seconds, no backoff.
    Object.assign(options, { pollIntervalMs: ms, pollMultiplier: 1, maxPollIntervalMs: ms });
  }
  try {
    return new GeminiTuner(options);
  } catch (error) {
    if (error instanceof InvalidOptionError && error.path === "apiKey") {
      throw new InvalidOptionError(
        "GEMINI_API_KEY",
        "No Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)",
        {
          hint: "Create a key at https://aistudio.google.com/apikey; for the fake service use the key `tunekit fake-server` prints",
        },
      );
    }
    throw error;
  }
}

/**
 * A `VertexTuner` from environment: `GOOGLE_CLOUD_PROJECT`, `GOOGLE_CLOUD_LOCATION`,
 * `TUNEKIT_VERTEX_STAGING_URI` (a `gs://bucket/prefix` for datasets), credentials from
 * Application Default Credentials, and `--base-url` / `TUNEKIT_VERTEX_BASE_URL` plus
 * `TUNEKIT_STORAGE_BASE_URL` to point at fakes.
 */
export function vertexTuner(flags: RemoteFlags, env: NodeJS.ProcessEnv): VertexTuner {
  const options: VertexTunerOptions = { env };
  const baseUrl = flags.baseUrl ?? (env.TUNEKIT_VERTEX_BASE_URL || undefined);
  if (baseUrl !== undefined) options.baseUrl = baseUrl;
  if (env.TUNEKIT_STORAGE_BASE_URL) options.storageBaseUrl = env.TUNEKIT_STORAGE_BASE_URL;
  if (env.TUNEKIT_VERTEX_STAGING_URI) options.stagingUri = env.TUNEKIT_VERTEX_STAGING_URI;
  if (env.TUNEKIT_VERTEX_ACCESS_TOKEN) options.accessToken = env.TUNEKIT_VERTEX_ACCESS_TOKEN;
  const interval = flags.pollInterval ?? (env.TUNEKIT_POLL_INTERVAL || undefined);
  if (interval !== undefined) {
    const ms = parseNumber("--poll-interval", interval, { min: 0.01 }) * 1000;
    Object.assign(options, { pollIntervalMs: ms, pollMultiplier: 1, maxPollIntervalMs: ms });
  }
  return new VertexTuner(options);
}

/**
 * The local tuner, loaded only when chosen so remote commands never touch the native addon.
 * Until `tunekit/local` exports `LocalTuner`, this says local tuning is not in this build.
 */
export async function localTuner(options: LocalTunerFlags = {}): Promise<Tuner> {
  const local = (await import("../local/index.js")) as unknown as {
    LocalTuner?: new (options: LocalTunerFlags) => Tuner;
  };
  if (typeof local.LocalTuner !== "function") {
    throw new TuningUnavailableError(
      "Local tuning is not available in this build of tunekit: tunekit/local can load and run models but has no LocalTuner yet",
      { hint: "Tune remotely with --backend gemini for now, or update tunekit" },
    );
  }
  return new local.LocalTuner(options);
}

/** `LocalTuner` options the CLI sets from flags (validated by the command). */
export interface LocalTunerFlags {
  baseWeights?: BaseWeights;
}

/** Builds the tuner a command asked for. */
export async function createBackend(
  name: string,
  flags: RemoteFlags,
  env: NodeJS.ProcessEnv,
  local: LocalTunerFlags = {},
): Promise<CliBackend> {
  if (name === "gemini") {
    return {
      name,
      tuner: geminiTuner(flags, env),
      interrupt: "detach",
      reattach: (job) => `tunekit watch ${job}`,
    };
  }
  if (name === "vertex") {
    return {
      name,
      tuner: vertexTuner(flags, env),
      interrupt: "detach",
      reattach: (job) => `tunekit watch ${job}`,
    };
  }
  if (name === "local") return { name, tuner: await localTuner(local), interrupt: "cancel" };
  throw new InvalidOptionError(
    "--backend",
    `Unknown backend "${name}" (use ${BACKENDS.join(" or ")})`,
  );
}

/** The first path segments of Gemini API resource names (`tunedModels/x/operations/y`, …). */
const GEMINI_COLLECTIONS = new Set(["tunedModels", "models", "operations"]);

/**
 * Which backend owns a job or model name: `projects/…/tuningJobs/…` is Vertex AI; an
 * existing path (a local run or adapter directory) is local, and so is anything that looks
 * like a path (`./x`, `/x`, `~/x`, `runs/x`, or `models/x` when `./models` is a directory),
 * so a mistyped run directory gets "no such directory" rather than a Gemini key error;
 * anything else (`tunedModels/…`, a bare id) is a Gemini name.
 */
export function backendForName(name: string): BackendName {
  if (/^projects\/[^/]+\/locations\/[^/]+\/tuningJobs\//.test(name)) return "vertex";
  if (name.startsWith("tunedModels/")) return "gemini";
  if (existsSync(name) || looksLikePath(name)) return "local";
  return "gemini";
}

function looksLikePath(name: string): boolean {
  if (/^(\.{1,2}|~)?[/\\]/.test(name) || name.includes("\\")) return true;
  const first = name.split("/")[0] as string;
  if (first === name) return false; // a bare id
  if (!GEMINI_COLLECTIONS.has(first)) return true;
  return existsSync(first) && statSync(first).isDirectory();
}
