/**
 * Chat templates: where a model keeps them and how they are rendered (`@huggingface/jinja`,
 * the Jinja subset transformers' templates use).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { InvalidOptionError, ModelLoadError } from "../../core/errors.js";

/** One turn of a conversation as chat templates expect it. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The template-related contents of a model directory. */
export interface ModelTemplateFiles {
  /** Parsed `tokenizer_config.json`, when present. */
  tokenizerConfig?: Record<string, unknown>;
  /** Contents of `chat_template.jinja`, when present. */
  chatTemplateJinja?: string;
  /** Parsed `special_tokens_map.json`, when present. */
  specialTokensMap?: Record<string, unknown>;
}

/** What {@link modelTemplateFiles} needs of a loaded model. */
export interface TemplateSourceModel {
  readonly path: string;
  readonly config: {
    readonly bosTokenId: number | undefined;
    readonly eosTokenIds: readonly number[];
    readonly chatTemplate: string | undefined;
  };
  detokenize(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
}

/**
 * The template sources of a loaded base: a model directory's files, or what a GGUF file
 * stores in its metadata (`tokenizer.chat_template` and the BOS/EOS tokens).
 */
export async function modelTemplateFiles(model: TemplateSourceModel): Promise<ModelTemplateFiles> {
  if (!/\.gguf$/i.test(model.path)) return readModelTemplateFiles(model.path);
  const tokenizerConfig: Record<string, unknown> = {};
  const text = (id: number | undefined) =>
    id === undefined ? undefined : model.detokenize([id], { skipSpecialTokens: false });
  const bos = text(model.config.bosTokenId);
  const eos = text(model.config.eosTokenIds[0]);
  if (bos) tokenizerConfig.bos_token = bos;
  if (eos) tokenizerConfig.eos_token = eos;
  if (model.config.chatTemplate !== undefined)
    tokenizerConfig.chat_template = model.config.chatTemplate;
  return { tokenizerConfig };
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return undefined;
  }
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null
      ? (value as Record<string, unknown>)
      : undefined;
  } catch (error) {
    throw new ModelLoadError(`${path} is not valid JSON`, { path, cause: error });
  }
}

/** Reads `tokenizer_config.json`, `chat_template.jinja` and `special_tokens_map.json` from `dir`. */
export async function readModelTemplateFiles(dir: string): Promise<ModelTemplateFiles> {
  const files: ModelTemplateFiles = {};
  const tokenizerConfig = await readJson(join(dir, "tokenizer_config.json"));
  if (tokenizerConfig) files.tokenizerConfig = tokenizerConfig;
  const specialTokensMap = await readJson(join(dir, "special_tokens_map.json"));
  if (specialTokensMap) files.specialTokensMap = specialTokensMap;
  try {
    files.chatTemplateJinja = await readFile(join(dir, "chat_template.jinja"), "utf8");
  } catch {
    // No separate template file.
  }
  return files;
}

/** A special token's text: tokenizer configs store either a string or an AddedToken object. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null) {
    const content = (value as { content?: unknown }).content;
    if (typeof content === "string") return content;
  }
  return undefined;
}

/** `bos_token` / `eos_token` text from the tokenizer config (else the special tokens map). */
export function specialTokens(files: ModelTemplateFiles): { bos?: string; eos?: string } {
  const out: { bos?: string; eos?: string } = {};
  const bos =
    tokenText(files.tokenizerConfig?.bos_token) ?? tokenText(files.specialTokensMap?.bos_token);
  const eos =
    tokenText(files.tokenizerConfig?.eos_token) ?? tokenText(files.specialTokensMap?.eos_token);
  if (bos !== undefined) out.bos = bos;
  if (eos !== undefined) out.eos = eos;
  return out;
}

/** Where a chat template was found. */
export type ChatTemplateSource = "chat_template.jinja" | "tokenizer_config.json" | "custom";

/**
 * The model's chat template: `chat_template.jinja` (newer transformers) first, else
 * `tokenizer_config.json` `chat_template`, which is a string or a list of
 * `{ name, template }` (then `name` picks one, `"default"` by default).
 */
export function findChatTemplate(
  files: ModelTemplateFiles,
  name?: string,
): { template: string; source: ChatTemplateSource; name?: string } | undefined {
  if (files.chatTemplateJinja !== undefined && files.chatTemplateJinja.trim() !== "" && !name) {
    return { template: files.chatTemplateJinja, source: "chat_template.jinja" };
  }
  const value = files.tokenizerConfig?.chat_template;
  if (typeof value === "string" && value.trim() !== "") {
    if (name && name !== "default") {
      throw new InvalidOptionError(
        "template.templateName",
        `the model has a single chat template; there is no template named "${name}"`,
      );
    }
    return { template: value, source: "tokenizer_config.json" };
  }
  if (Array.isArray(value)) {
    const named = value.filter(
      (entry): entry is { name: string; template: string } =>
        typeof entry === "object" &&
        entry !== null &&
        typeof (entry as { name?: unknown }).name === "string" &&
        typeof (entry as { template?: unknown }).template === "string",
    );
    const wanted = name ?? "default";
    const found = named.find((entry) => entry.name === wanted);
    if (found)
      return { template: found.template, source: "tokenizer_config.json", name: found.name };
    if (name !== undefined) {
      throw new InvalidOptionError(
        "template.templateName",
        `the model has no chat template named "${name}"; it has ${named.map((e) => `"${e.name}"`).join(", ")}`,
      );
    }
  }
  if (name && files.chatTemplateJinja !== undefined) {
    throw new InvalidOptionError(
      "template.templateName",
      `the model has a single chat template (chat_template.jinja); there is no template named "${name}"`,
    );
  }
  return undefined;
}

const parsed = new Map<string, Template>();

function compile(source: string): Template {
  let template = parsed.get(source);
  if (template === undefined) {
    try {
      template = new Template(source);
    } catch (error) {
      throw new InvalidOptionError(
        "template",
        `the chat template does not parse: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (parsed.size > 32) parsed.clear();
    parsed.set(source, template);
  }
  return template;
}

/** What a chat template is rendered with besides the messages. */
export interface ChatRenderContext {
  bosToken?: string | undefined;
  eosToken?: string | undefined;
  /** Extra template variables (`enable_thinking`, `date_string`, …). */
  templateArgs?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Renders `messages` through a chat template, as transformers' `apply_chat_template(...,
 * tokenize=False)` does. No `strftime_now` is provided, so templates that print today's
 * date fall back to their fixed default and a prompt renders the same on every day —
 * training and inference prompts stay identical (pass `date_string` to choose a date).
 */
export function renderChat(
  source: string,
  messages: readonly ChatMessage[],
  addGenerationPrompt: boolean,
  context: ChatRenderContext = {},
): string {
  const template = compile(source);
  try {
    return template.render({
      ...context.templateArgs,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      bos_token: context.bosToken ?? "",
      eos_token: context.eosToken ?? "",
      add_generation_prompt: addGenerationPrompt,
    });
  } catch (error) {
    throw new InvalidOptionError(
      "template",
      `the chat template failed: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
        hint: 'Use template "plain", a custom template such as "User: {input}\\n\\nAssistant: ", or pass the templateArgs it expects.',
      },
    );
  }
}
