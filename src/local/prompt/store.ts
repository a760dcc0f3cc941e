/**
 * `tunekit.json`: tunekit's own file in an adapter directory, beside PEFT's
 * `adapter_config.json` and `adapter_model.safetensors`. It carries the prompt template
 * (so `generate(rawInput)` rebuilds training prompts) under the key `template`; other keys
 * written by other parts of tunekit are kept when the template is saved.
 *
 * ```json
 * {
 *   "format": "tunekit",
 *   "version": 1,
 *   "template": { "version": 1, "kind": "text", "name": "custom",
 *                 "prompt": "User: {instruction}{input}\n\nAssistant: ",
 *                 "completion": "{output}", "instructionFormat": "{instruction}",
 *                 "eosToken": "</s>" }
 * }
 * ```
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ModelLoadError } from "../../core/errors.js";
import { writeAtomic } from "../hub/cache.js";
import { TEMPLATE_FORMAT_VERSION, type TemplateDescriptor } from "./template.js";

/** The file name of tunekit's metadata in an adapter directory. */
export const TUNEKIT_FILE = "tunekit.json";

async function readMetadata(dir: string): Promise<Record<string, unknown> | undefined> {
  const path = join(dir, TUNEKIT_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ModelLoadError(`cannot read ${path}`, { path, cause: error });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch (error) {
    throw new ModelLoadError(`${path} is not a JSON object`, { path, cause: error });
  }
}

/**
 * Writes `descriptor` into `<dir>/tunekit.json` (atomically; other keys are kept).
 *
 * @example
 * ```ts
 * await saveTemplate(adapterDir, template);
 * ```
 */
export async function saveTemplate(dir: string, descriptor: TemplateDescriptor): Promise<void> {
  await mkdir(dir, { recursive: true });
  const current = (await readMetadata(dir)) ?? {};
  const next = { format: "tunekit", version: 1, ...current, template: descriptor };
  await writeAtomic(join(dir, TUNEKIT_FILE), `${JSON.stringify(next, null, 2)}\n`);
}

const isString = (v: unknown) => typeof v === "string";
const isOptString = (v: unknown) => v === undefined || typeof v === "string";

/** Checks a stored descriptor; the message names the first bad field. */
export function parseTemplateDescriptor(value: unknown, where: string): TemplateDescriptor {
  const bad = (field: string, why: string): never => {
    throw new ModelLoadError(`${where}: template.${field} ${why}`, { path: where });
  };
  if (typeof value !== "object" || value === null) return bad("", "is missing");
  const d = value as Record<string, unknown>;
  if (typeof d.version !== "number") bad("version", "is missing");
  if ((d.version as number) > TEMPLATE_FORMAT_VERSION) {
    throw new ModelLoadError(
      `${where} was written by a newer tunekit (template format ${String(d.version)}); upgrade tunekit`,
      { path: where },
    );
  }
  for (const key of ["instruction", "bosToken", "eosToken", "endText"]) {
    if (!isOptString(d[key])) bad(key, "must be a string");
  }
  if (d.addBos !== undefined && typeof d.addBos !== "boolean") bad("addBos", "must be a boolean");
  if (d.kind === "chat") {
    if (!isString(d.chatTemplate)) bad("chatTemplate", "must be a string");
    if (typeof d.systemRole !== "boolean") bad("systemRole", "must be a boolean");
    if (!isOptString(d.responsePrefix)) bad("responsePrefix", "must be a string");
    if (
      d.templateArgs !== undefined &&
      (typeof d.templateArgs !== "object" || d.templateArgs === null)
    ) {
      bad("templateArgs", "must be an object");
    }
  } else if (d.kind === "text") {
    for (const key of ["prompt", "completion", "instructionFormat"]) {
      if (!isString(d[key])) bad(key, "must be a string");
    }
    if (d.name !== "plain" && d.name !== "custom") bad("name", 'must be "plain" or "custom"');
  } else {
    bad("kind", `must be "chat" or "text", got ${JSON.stringify(d.kind)}`);
  }
  return d as unknown as TemplateDescriptor;
}

/**
 * Reads the template saved in `<dir>/tunekit.json`; undefined when the directory has no
 * `tunekit.json` or it holds no template (e.g. an adapter trained in Python).
 */
export async function loadTemplate(dir: string): Promise<TemplateDescriptor | undefined> {
  const metadata = await readMetadata(dir);
  if (metadata?.template === undefined) return undefined;
  return parseTemplateDescriptor(metadata.template, join(dir, TUNEKIT_FILE));
}
