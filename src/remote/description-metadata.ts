/**
 * What tunekit stores with a remote tuned model, in the model's own `description` (Gemini
 * `TunedModel`, Vertex `TuningJob`): the training template and the id of the `tune()` call
 * that created it.
 *
 * **The template** (the instruction shared by every training example) must be known at
 * inference time on any machine, long after the tuning process exited, because a tuned model
 * only answers well when production prompts are built like training prompts. Whoever can read
 * the model can read its template; nothing depends on a local file.
 *
 * **The request id** is decided before a create is first sent and travels with every attempt.
 * When a repeated create meets "already exists" (its earlier answer was lost), the existing
 * model is this call's own exactly when it carries this id: a model someone made earlier with
 * the same name never does.
 *
 * Both travel as one last line `tunekit-template: {"v":1,"instruction":"…","request":"…"}`
 * (one line of JSON, newlines escaped; either field may be absent). The user's own text keeps
 * the lines above it; `TunedModelInfo.description` shows only that text.
 */
import type { Example } from "../core/dataset/example.js";
import type { PromptTemplate } from "../core/types.js";

/** The prefix of the description line that carries tunekit's metadata. */
export const TEMPLATE_MARKER = "tunekit-template:";

/** Templates longer than this (as JSON) are not stored in the description. */
export const MAX_STORED_TEMPLATE_CHARS = 8_000;

/** What the metadata line holds. */
export interface DescriptionMetadata {
  template?: PromptTemplate | undefined;
  /** The id of the `tune()` call that created the model. */
  request?: string | undefined;
}

/**
 * The instruction shared by every example as a template of `kind`, `undefined` when there is
 * no instruction, `"mixed"` when examples carry different ones (nothing can be stored then).
 */
export function templateFromExamples(
  examples: readonly Example[],
  kind: string,
): PromptTemplate | "mixed" | undefined {
  let instruction: string | undefined;
  let first = true;
  for (const example of examples) {
    const current = example.instruction || undefined;
    if (first) {
      instruction = current;
      first = false;
    } else if (current !== instruction) {
      return "mixed";
    }
  }
  return instruction === undefined ? undefined : { instruction, kind };
}

/** The metadata line, or undefined when there is nothing to store (or the template is too long). */
export function metadataLine(metadata: DescriptionMetadata): string | undefined {
  const json: { v: 1; instruction?: string; request?: string } = { v: 1 };
  if (metadata.template?.instruction) json.instruction = metadata.template.instruction;
  if (metadata.request) json.request = metadata.request;
  if (json.instruction === undefined && json.request === undefined) return undefined;
  const line = TEMPLATE_MARKER + JSON.stringify(json);
  if (line.length <= MAX_STORED_TEMPLATE_CHARS) return line;
  // Too long with the instruction: keep the request id, drop the template.
  return json.request === undefined
    ? undefined
    : TEMPLATE_MARKER + JSON.stringify({ v: 1, request: json.request });
}

/**
 * Joins the user's description and the metadata line for `template` and `request` (any of
 * them may be absent).
 */
export function encodeDescription(
  description: string | undefined,
  template: PromptTemplate | undefined,
  request?: string,
): string | undefined {
  const line = metadataLine({ template, request });
  const text = description?.trimEnd() || undefined;
  if (line === undefined) return text;
  return text === undefined ? line : `${text}\n\n${line}`;
}

/**
 * Splits a stored description into the user's text, the template (labelled `kind`) and the
 * request id. A description without a readable metadata line is all user text.
 */
export function decodeDescription(
  stored: string | undefined,
  kind: string,
): {
  description: string | undefined;
  template: PromptTemplate | undefined;
  request?: string;
} {
  if (!stored) return { description: stored || undefined, template: undefined };
  const at = stored.startsWith(TEMPLATE_MARKER)
    ? 0
    : stored.lastIndexOf(`\n${TEMPLATE_MARKER}`) + 1;
  if (at === 0 && !stored.startsWith(TEMPLATE_MARKER)) {
    return { description: stored, template: undefined };
  }
  const line = stored.slice(at).split("\n")[0] ?? "";
  let parsed: { instruction?: unknown; request?: unknown };
  try {
    parsed = JSON.parse(line.slice(TEMPLATE_MARKER.length)) as typeof parsed;
  } catch {
    return { description: stored, template: undefined };
  }
  if (parsed === null || typeof parsed !== "object") {
    return { description: stored, template: undefined };
  }
  const template =
    typeof parsed.instruction === "string" ? { instruction: parsed.instruction, kind } : undefined;
  const rest = stored.slice(0, at).trimEnd();
  return {
    description: rest === "" ? undefined : rest,
    template,
    ...(typeof parsed.request === "string" ? { request: parsed.request } : {}),
  };
}
