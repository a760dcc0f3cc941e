/**
 * Resource names and ids of the Gemini API: tuned models (`tunedModels/{id}`), their
 * operations (`tunedModels/{id}/operations/{op}`) and base models (`models/{m}`).
 */
import { getRandomValues } from "node:crypto";
import { InvalidOptionError } from "../core/errors.js";

/** The documented tuned-model id pattern: ≤ 40 characters, `[a-z]([a-z0-9-]{0,38}[a-z0-9])?`. */
export const TUNED_MODEL_ID_PATTERN = /^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$/;

const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const SUFFIX_LENGTH = 6;

function randomSuffix(random?: () => number): string {
  let out = "";
  if (random) {
    for (let i = 0; i < SUFFIX_LENGTH; i++) {
      out +=
        SUFFIX_ALPHABET[Math.floor(random() * SUFFIX_ALPHABET.length) % SUFFIX_ALPHABET.length];
    }
    return out;
  }
  const bytes = getRandomValues(new Uint8Array(SUFFIX_LENGTH));
  for (const byte of bytes) out += SUFFIX_ALPHABET[byte % SUFFIX_ALPHABET.length];
  return out;
}

/**
 * A tuned-model id made from `displayName` plus a random 6-character suffix, the way the
 * service names models itself ("Sentence Translator" → `sentence-translator-u3b7mq`).
 * Always matches {@link TUNED_MODEL_ID_PATTERN}. With no usable display name the stem is
 * `tuned-model`.
 *
 * tunekit always sends an id so that a create repeated after a lost response meets
 * ALREADY_EXISTS for the same model instead of creating a second one.
 *
 * @example
 * ```ts
 * generateTunedModelId("Sentence Translator"); // "sentence-translator-k3x9qa"
 * ```
 */
export function generateTunedModelId(displayName?: string, random?: () => number): string {
  let stem = (displayName ?? "")
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  stem = stem.replace(/^[^a-z]+/, ""); // must start with a letter
  if (stem === "") stem = "tuned-model";
  const maxStem = 40 - SUFFIX_LENGTH - 1;
  stem = stem.slice(0, maxStem).replace(/-+$/, "");
  return `${stem}-${randomSuffix(random)}`;
}

/** Throws `InvalidOptionError` unless `id` matches the documented pattern. */
export function assertTunedModelId(id: string, path = "gemini.tunedModelId"): void {
  if (!TUNED_MODEL_ID_PATTERN.test(id)) {
    throw new InvalidOptionError(
      path,
      `Invalid tuned model id "${id}": it must be 1–40 characters of lowercase letters, digits and hyphens, start with a letter and not end with a hyphen`,
    );
  }
}

/** The parts of a tuned-model or operation name. */
export interface ParsedTuningName {
  /** `tunedModels/{id}`. */
  tunedModel: string;
  /** `{id}`. */
  id: string;
  /** `tunedModels/{id}/operations/{op}` when the name was an operation's. */
  operation?: string;
}

/**
 * Parses `tunedModels/{id}`, `tunedModels/{id}/operations/{op}` or a bare `{id}`.
 *
 * @throws InvalidOptionError for anything else.
 */
export function parseTuningName(name: string, path = "name"): ParsedTuningName {
  const trimmed = typeof name === "string" ? name.trim().replace(/^\/+/, "") : "";
  const match = /^(?:tunedModels\/)?([^/]+)(?:\/operations\/([^/]+))?$/.exec(trimmed);
  if (!match?.[1] || (trimmed.includes("/") && !trimmed.startsWith("tunedModels/"))) {
    throw new InvalidOptionError(
      path,
      `"${name}" is not a tuned model or operation name: expected "tunedModels/{id}" or "tunedModels/{id}/operations/{operation}"`,
    );
  }
  const id = match[1];
  const parsed: ParsedTuningName = { tunedModel: `tunedModels/${id}`, id };
  if (match[2]) parsed.operation = `tunedModels/${id}/operations/${match[2]}`;
  return parsed;
}

/** `gemini-x` → `models/gemini-x`; names with a collection prefix are kept. */
export function normalizeBaseModel(name: string): string {
  const trimmed = name.trim();
  if (trimmed === "") throw new InvalidOptionError("baseModel", "baseModel must not be empty");
  return trimmed.includes("/") ? trimmed : `models/${trimmed}`;
}
