/**
 * Vertex AI names: hosts per location, tuning-job and endpoint resource names, `gs://` URIs
 * and the labels tunekit puts on a job.
 */
import { InvalidOptionError } from "../core/errors.js";

/** Where the `global` location is served. */
export const VERTEX_GLOBAL_BASE_URL = "https://aiplatform.googleapis.com";

/** The Cloud Storage JSON API host (uploads go to `/upload/storage/v1/…`). */
export const STORAGE_BASE_URL = "https://storage.googleapis.com";

/**
 * The label key tunekit puts on every job it creates. Its value is unique per `tune()` call,
 * so a create repeated after a lost response can find the job the first attempt made.
 */
export const REQUEST_LABEL_KEY = "tunekit_request";

const LOCATION = /^[a-z][a-z0-9-]{0,62}$/;
const PROJECT = /^[a-z0-9][a-z0-9.:-]{0,127}$/i;

/** The API host of `location`: `https://{location}-aiplatform.googleapis.com`, or the global host. */
export function vertexBaseUrl(location: string): string {
  assertLocation(location);
  return location === "global"
    ? VERTEX_GLOBAL_BASE_URL
    : `https://${location}-aiplatform.googleapis.com`;
}

export function assertLocation(location: string): void {
  if (typeof location !== "string" || !LOCATION.test(location)) {
    throw new InvalidOptionError(
      "location",
      `"${String(location)}" is not a Vertex AI location: use a region such as "us-central1", or "global"`,
    );
  }
}

export function assertProject(project: string): void {
  if (typeof project !== "string" || !PROJECT.test(project)) {
    throw new InvalidOptionError(
      "project",
      `"${String(project)}" is not a Google Cloud project id or number`,
    );
  }
}

/** The parts of `projects/{p}/locations/{l}/tuningJobs/{id}`. */
export interface ParsedJobName {
  name: string;
  project: string;
  location: string;
  id: string;
}

/**
 * Parses a tuning job name. A bare id (`1234567890`) is completed with the tuner's
 * project and location.
 *
 * @throws InvalidOptionError for anything else.
 */
export function parseJobName(
  name: string,
  defaults: { project: string; location: string },
  path = "name",
): ParsedJobName {
  const trimmed = typeof name === "string" ? name.trim().replace(/^\/+/, "") : "";
  const full = /^projects\/([^/]+)\/locations\/([^/]+)\/tuningJobs\/([^/:]+)$/.exec(trimmed);
  if (full) {
    const [, project, location, id] = full as unknown as [string, string, string, string];
    return { name: trimmed, project, location, id };
  }
  if (/^[A-Za-z0-9_-]+$/.test(trimmed)) {
    const { project, location } = defaults;
    return {
      name: `projects/${project}/locations/${location}/tuningJobs/${trimmed}`,
      project,
      location,
      id: trimmed,
    };
  }
  throw new InvalidOptionError(
    path,
    `"${name}" is not a tuning job name: expected "projects/{project}/locations/{location}/tuningJobs/{id}" or a bare job id`,
  );
}

/** The location segment of a `projects/*\/locations/{l}/…` resource name, if any. */
export function locationOf(resource: string): string | undefined {
  return /^projects\/[^/]+\/locations\/([^/]+)\//.exec(resource)?.[1];
}

/** A bucket and object prefix from `gs://bucket/prefix`. */
export interface GcsLocation {
  bucket: string;
  /** Without leading or trailing slashes; may be empty. */
  prefix: string;
}

const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

/**
 * Parses `gs://bucket[/prefix]`.
 *
 * @throws InvalidOptionError naming `path` for anything else.
 */
export function parseGcsUri(uri: string, path: string): GcsLocation {
  const match = typeof uri === "string" ? /^gs:\/\/([^/]+)(?:\/(.*))?$/.exec(uri.trim()) : null;
  if (!match?.[1] || !BUCKET.test(match[1])) {
    throw new InvalidOptionError(
      path,
      `${path} must be a Cloud Storage URI like "gs://my-bucket/tuning", got ${JSON.stringify(uri)}`,
    );
  }
  return { bucket: match[1], prefix: (match[2] ?? "").replace(/^\/+|\/+$/g, "") };
}

/** Joins a staging location and an object name into a `gs://` URI. */
export function gcsUri(bucket: string, object: string): string {
  return `gs://${bucket}/${object}`;
}

export { newRequestId } from "../remote/request-id.js";

const LABEL = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;

/**
 * Checks labels the way Vertex AI does: at most 64 per resource, keys 1–63 characters starting
 * with a lowercase letter, keys and values only lowercase letters, digits, `_` and `-`.
 */
export function assertLabels(labels: Record<string, string>, path = "vertex.labels"): void {
  const entries = Object.entries(labels);
  if (entries.length > 63) {
    throw new InvalidOptionError(
      path,
      `${path} has ${entries.length} labels; at most 63 fit beside tunekit's own`,
    );
  }
  for (const [key, value] of entries) {
    if (!/^\p{Ll}/u.test(key) || !LABEL.test(key)) {
      throw new InvalidOptionError(
        `${path}.${key}`,
        `Label key "${key}" is invalid: 1–63 lowercase letters, digits, "_" or "-", starting with a lowercase letter`,
      );
    }
    if (typeof value !== "string" || !LABEL.test(value)) {
      throw new InvalidOptionError(
        `${path}.${key}`,
        `Label value ${JSON.stringify(value)} of "${key}" is invalid: at most 63 lowercase letters, digits, "_" or "-"`,
      );
    }
    if (key === REQUEST_LABEL_KEY) {
      throw new InvalidOptionError(
        `${path}.${key}`,
        `The label "${REQUEST_LABEL_KEY}" is reserved for tunekit`,
      );
    }
  }
}
