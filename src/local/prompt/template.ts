/**
 * Prompt templates for local tuning. A template turns an example into the exact text the
 * model is trained on — a `prompt` (masked from the loss) and a `completion` (trained) —
 * and turns a raw input into the same prompt at inference. The resolved template is a
 * self-contained JSON {@link TemplateDescriptor}, stored beside the adapter
 * (`tunekit.json`), so `generate(rawInput)` builds production prompts exactly like the
 * training prompts, on any machine, long after training.
 */
import type { Example } from "../../core/dataset/example.js";
import { InvalidOptionError } from "../../core/errors.js";
import type { PromptTemplate } from "../../core/types.js";
import {
  type ChatMessage,
  type ChatTemplateSource,
  findChatTemplate,
  type ModelTemplateFiles,
  renderChat,
  specialTokens,
} from "./chat.js";

/** The version of the descriptor format written by this code. */
export const TEMPLATE_FORMAT_VERSION = 1;

interface DescriptorBase {
  version: typeof TEMPLATE_FORMAT_VERSION;
  /** Preamble used when an example (or a `generate` call) gives none. */
  instruction?: string;
  /** The tokenizer's BOS / EOS token text (what `{{ bos_token }}` / `{eos}` render). */
  bosToken?: string;
  eosToken?: string;
  /**
   * Put the tokenizer's BOS id before the prompt tokens (unless the rendered text already
   * starts with the BOS token). Absent: do what the tokenizer does by default.
   */
  addBos?: boolean;
  /**
   * Text every trained response ends with (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`,
   * `</s>`…), when the template writes one; generation stops on it. Absent: the EOS token
   * id is appended to each response instead.
   */
  endText?: string;
}

/** The model's (or a given) Jinja chat template. */
export interface ChatTemplateDescriptor extends DescriptorBase {
  kind: "chat";
  /** The Jinja source, copied so the adapter does not depend on the base model's files. */
  chatTemplate: string;
  source: ChatTemplateSource;
  /** Which of several named templates (`tokenizer_config.json` list form). */
  templateName?: string;
  /**
   * Whether the instruction becomes a `system` turn. False for templates that reject a
   * system role (e.g. Mistral v0.1): the instruction then precedes the input in the user
   * turn, separated by a blank line.
   */
  systemRole: boolean;
  /** Text the template puts before the output inside the response (e.g. an empty think block). */
  responsePrefix?: string;
  /** Extra template variables (`enable_thinking`, `date_string`, …). */
  templateArgs?: Record<string, unknown>;
}

/** A text template with `{instruction}`, `{input}`, `{output}`, `{bos}` and `{eos}` slots. */
export interface TextTemplateDescriptor extends DescriptorBase {
  kind: "text";
  /** `"plain"` (tunekit's default for models without a chat template) or `"custom"`. */
  name: "plain" | "custom";
  /** The prompt, e.g. `"User: {instruction}{input}\n\nAssistant: "`. */
  prompt: string;
  /** The response, e.g. `"{output}"` (EOS id appended) or `"{output}{eos}"`. */
  completion: string;
  /**
   * How a non-empty instruction fills `{instruction}` (an empty one renders as ""). A
   * prompt without the slot gets the instruction and a blank line in front instead.
   */
  instructionFormat: string;
}

/** A resolved, serialisable template: what `tunekit.json` stores under `template`. */
export type TemplateDescriptor = ChatTemplateDescriptor | TextTemplateDescriptor;

/**
 * How a user picks a template (`local.template`):
 * - `"auto"` (default): the model's chat template, else `"plain"`;
 * - `"chat"`: the model's chat template (an error when it has none);
 * - `"plain"`: `"{instruction}User: {input}\n\nAssistant:"` → `" {output}"` + EOS, where a
 *   non-empty instruction renders as `"{instruction}\n\n"`;
 * - any other string: a custom prompt with `{input}` (and optionally `{instruction}`,
 *   `{bos}`, `{eos}`) — or, when it contains `{%` or `{{`, a Jinja chat template;
 * - an object, for the rest (completion format, instruction, BOS, template variables).
 */
export type TemplateOption = "auto" | "chat" | "plain" | string | TemplateSpec;

/** The object form of {@link TemplateOption}; compatible with the core `PromptTemplate`. */
export interface TemplateSpec extends PromptTemplate {
  /** `"chat"`, `"plain"`, `"custom"` or `"auto"`; inferred from the other fields when absent. */
  kind?: string;
  /** Custom prompt format (see {@link TemplateOption}). */
  prompt?: string;
  /** Custom response format. @default "{output}" */
  completion?: string;
  /** A preamble for examples that have none, and for `generate` calls. */
  instruction?: string;
  /** How a non-empty instruction fills `{instruction}` in a custom prompt. @default "{instruction}" */
  instructionFormat?: string;
  /** A Jinja chat template to use instead of the model's. */
  chatTemplate?: string;
  /** Picks one of several named chat templates in `tokenizer_config.json`. */
  templateName?: string;
  /** Extra chat-template variables, e.g. `{ enable_thinking: false }`. */
  templateArgs?: Record<string, unknown>;
  /** Force the BOS id on (true) or off (false); default: the tokenizer's own behaviour. */
  addBos?: boolean;
}

/** The default template for models without a chat template (the seed's format). */
// The space after "Assistant:" belongs to the response: byte-level BPE tokenizers attach a
// space to the following word (" 42"), so a prompt ending in a space splits tokens the model
// never saw together and the prompt/response boundary stops being a token boundary.
export const PLAIN_TEMPLATE = Object.freeze({
  prompt: "{instruction}User: {input}\n\nAssistant:",
  completion: " {output}",
  instructionFormat: "{instruction}\n\n",
});

/** One example as text: training text = `prompt + completion`. */
export interface RenderedExample {
  prompt: string;
  completion: string;
}

const SLOT = /\{(instruction|input|output|bos|eos)\}|\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const isJinja = (text: string) => text.includes("{%") || text.includes("{{");

function checkSlots(text: string, allowed: readonly string[], option: string): void {
  for (const match of text.matchAll(SLOT)) {
    const name = match[1] ?? match[2] ?? "";
    if (!allowed.includes(name)) {
      throw new InvalidOptionError(
        option,
        `unknown placeholder {${name}} in ${option}; use ${allowed.map((s) => `{${s}}`).join(", ")}`,
      );
    }
  }
}

function fill(text: string, values: Record<string, string>): string {
  return text.replace(SLOT, (whole, known: string | undefined) =>
    known !== undefined ? (values[known] ?? "") : whole,
  );
}

/**
 * Resolves a template option against a model's files into a descriptor.
 *
 * @example
 * ```ts
 * const files = await readModelTemplateFiles(modelDir);
 * const template = resolveTemplate("auto", files);                      // chat template, else plain
 * const seed = resolveTemplate({ prompt: "User: {instruction}{input}\n\nAssistant: " }, files);
 * ```
 */
export function resolveTemplate(
  option: TemplateOption | undefined,
  files: ModelTemplateFiles,
): TemplateDescriptor {
  const spec: TemplateSpec =
    option === undefined
      ? {}
      : typeof option === "string"
        ? option === "auto" || option === "chat" || option === "plain"
          ? { kind: option }
          : isJinja(option)
            ? { kind: "chat", chatTemplate: option }
            : { kind: "custom", prompt: option }
        : option;
  const tokens = specialTokens(files);
  const base: Omit<DescriptorBase, "version"> = {};
  if (spec.instruction !== undefined && spec.instruction !== "")
    base.instruction = spec.instruction;
  if (tokens.bos !== undefined) base.bosToken = tokens.bos;
  if (tokens.eos !== undefined) base.eosToken = tokens.eos;
  if (spec.addBos !== undefined) base.addBos = spec.addBos;

  const kind =
    spec.kind ??
    (spec.chatTemplate !== undefined ? "chat" : spec.prompt !== undefined ? "custom" : "auto");
  if (kind === "chat" || kind === "auto") {
    const found =
      spec.chatTemplate !== undefined
        ? { template: spec.chatTemplate, source: "custom" as const }
        : findChatTemplate(files, spec.templateName);
    if (found !== undefined) return chatDescriptor(found, base, spec.templateArgs);
    if (kind === "chat") {
      throw new InvalidOptionError(
        "template",
        "the model has no chat template (tokenizer_config.json chat_template or chat_template.jinja); " +
          'use template "plain" or a custom template such as "User: {input}\\n\\nAssistant: "',
      );
    }
    return textDescriptor("plain", { ...PLAIN_TEMPLATE }, base);
  }
  if (kind === "plain") return textDescriptor("plain", { ...PLAIN_TEMPLATE }, base);
  if (kind !== "custom" && kind !== "text") {
    throw new InvalidOptionError(
      "template.kind",
      `unknown template kind "${kind}"; use "auto", "chat", "plain" or "custom"`,
    );
  }
  if (spec.prompt === undefined) {
    throw new InvalidOptionError(
      "template.prompt",
      "a custom template needs a prompt with {input}",
    );
  }
  return textDescriptor(
    "custom",
    {
      prompt: spec.prompt,
      completion: spec.completion ?? "{output}",
      instructionFormat: spec.instructionFormat ?? "{instruction}",
    },
    base,
  );
}

function textDescriptor(
  name: "plain" | "custom",
  parts: { prompt: string; completion: string; instructionFormat: string },
  base: Omit<DescriptorBase, "version">,
): TextTemplateDescriptor {
  checkSlots(parts.prompt, ["instruction", "input", "bos", "eos"], "template.prompt");
  checkSlots(parts.completion, ["output", "eos"], "template.completion");
  checkSlots(parts.instructionFormat, ["instruction"], "template.instructionFormat");
  if (!parts.prompt.includes("{input}")) {
    throw new InvalidOptionError("template.prompt", "the prompt template must contain {input}");
  }
  if (!parts.completion.includes("{output}")) {
    throw new InvalidOptionError(
      "template.completion",
      "the completion template must contain {output}",
    );
  }
  const text = parts.prompt + parts.completion;
  if (
    (text.includes("{bos}") && base.bosToken === undefined) ||
    (text.includes("{eos}") && base.eosToken === undefined)
  ) {
    throw new InvalidOptionError(
      "template",
      "the template uses {bos} or {eos} but the model's tokenizer_config.json names no such token",
    );
  }
  const descriptor: TextTemplateDescriptor = {
    version: TEMPLATE_FORMAT_VERSION,
    kind: "text",
    name,
    ...base,
    ...parts,
  };
  if (parts.completion.endsWith("{eos}") && base.eosToken !== undefined) {
    descriptor.endText = base.eosToken;
  }
  return descriptor;
}

const SENTINEL = "TUNEKIT_SENTINEL_OUTPUT_7F3A";
const PROBE_INPUT = "TUNEKIT_SENTINEL_INPUT_19C2";

function chatDescriptor(
  found: { template: string; source: ChatTemplateSource; name?: string },
  base: Omit<DescriptorBase, "version">,
  templateArgs: Record<string, unknown> | undefined,
): ChatTemplateDescriptor {
  const descriptor: ChatTemplateDescriptor = {
    version: TEMPLATE_FORMAT_VERSION,
    kind: "chat",
    chatTemplate: found.template,
    source: found.source,
    systemRole: true,
    ...base,
  };
  if (found.name !== undefined) descriptor.templateName = found.name;
  if (templateArgs !== undefined) descriptor.templateArgs = { ...templateArgs };
  // Does the template accept a system turn? (Some raise on any role but user/assistant.)
  try {
    splitChat(descriptor, { input: PROBE_INPUT, output: SENTINEL, instruction: "Be brief." });
  } catch {
    descriptor.systemRole = false;
  }
  // Probe what surrounds the output in a response: a prefix and the end-of-turn text.
  const { completion } = splitChat(descriptor, { input: PROBE_INPUT, output: SENTINEL });
  const at = completion.indexOf(SENTINEL);
  if (at < 0) {
    throw new InvalidOptionError(
      "template",
      "the chat template does not render the assistant's message content",
    );
  }
  const prefix = completion.slice(0, at);
  const end = completion.slice(at + SENTINEL.length).trim();
  if (prefix !== "") descriptor.responsePrefix = prefix;
  if (end !== "") descriptor.endText = end;
  return descriptor;
}

function chatMessages(
  descriptor: ChatTemplateDescriptor,
  input: string,
  instruction: string | undefined,
): ChatMessage[] {
  if (!instruction) return [{ role: "user", content: input }];
  if (descriptor.systemRole) {
    return [
      { role: "system", content: instruction },
      { role: "user", content: input },
    ];
  }
  return [{ role: "user", content: `${instruction}\n\n${input}` }];
}

function chatContext(descriptor: ChatTemplateDescriptor) {
  return {
    bosToken: descriptor.bosToken,
    eosToken: descriptor.eosToken,
    templateArgs: descriptor.templateArgs,
  };
}

/** The user → assistant pairs of an example: its history, then its input and output. */
function pairsOf(example: Example): { user: string; assistant: string }[] {
  const pairs: { user: string; assistant: string }[] = [];
  const history = example.history ?? [];
  for (let i = 0; i + 1 < history.length; i += 2) {
    pairs.push({ user: history[i]?.content ?? "", assistant: history[i + 1]?.content ?? "" });
  }
  pairs.push({ user: example.input, assistant: example.output });
  return pairs;
}

/**
 * Renders a conversation turn by turn — up to each generation prompt, and up to each answer —
 * and splits the text at those boundaries, so every prompt is exactly what inference
 * renders. Whitespace the template writes after the end-of-turn text (ChatML's trailing
 * newline) is left to the next turn's prompt: generation stops at the end-of-turn token, so
 * it is never produced and is not trained. `open`: the last turn has no answer yet
 * (inference), only its prompt is rendered.
 */
function chatTurns(
  descriptor: ChatTemplateDescriptor,
  example: Example,
  open: boolean,
): RenderedExample[] {
  const instruction = example.instruction || descriptor.instruction;
  const context = chatContext(descriptor);
  const pairs = pairsOf(example);
  const messages: ChatMessage[] = [];
  const turns: RenderedExample[] = [];
  let consumed = "";
  for (const [k, pair] of pairs.entries()) {
    messages.push(
      ...(k === 0
        ? chatMessages(descriptor, pair.user, instruction)
        : [{ role: "user" as const, content: pair.user }]),
    );
    const prompt = renderChat(descriptor.chatTemplate, messages, true, context);
    if (!prompt.startsWith(consumed)) {
      throw new InvalidOptionError(
        "template",
        `the chat template renders turn ${k} of the conversation differently once turn ${k + 1} ` +
          `follows (they differ at character ${firstDifference(consumed, prompt)}), so the turns cannot ` +
          'be trained one by one; use local.trainOn "last-turn" (earlier turns as rendered in the ' +
          "last prompt) or a custom template",
      );
    }
    if (open && k === pairs.length - 1) {
      turns.push({ prompt: prompt.slice(consumed.length), completion: "" });
      break;
    }
    messages.push({ role: "assistant", content: pair.assistant });
    const full = renderChat(descriptor.chatTemplate, messages, false, context);
    if (!full.startsWith(prompt)) {
      const at = firstDifference(prompt, full);
      throw new InvalidOptionError(
        "template",
        `the chat template renders the prompt differently with and without the answer (they differ at ` +
          `character ${at}: ${JSON.stringify(prompt.slice(at, at + 30))} vs ${JSON.stringify(full.slice(at, at + 30))}), ` +
          "so prompt and response cannot be split exactly; pass templateArgs (e.g. { enable_thinking: false }) or a custom template",
      );
    }
    const completion = endAtEndText(descriptor, full.slice(prompt.length));
    turns.push({ prompt: prompt.slice(consumed.length), completion });
    consumed = prompt + completion;
  }
  return turns;
}

/** Drops what a response renders after its end-of-turn text (whitespace only). */
function endAtEndText(descriptor: ChatTemplateDescriptor, completion: string): string {
  const end = descriptor.endText;
  if (end === undefined) return completion;
  const at = completion.lastIndexOf(end);
  return at >= 0 && completion.slice(at + end.length).trim() === ""
    ? completion.slice(0, at + end.length)
    : completion;
}

function firstDifference(a: string, b: string): number {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  return at;
}

/** One example as a single prompt/completion split (the probe of {@link chatDescriptor}). */
function splitChat(descriptor: ChatTemplateDescriptor, example: Example): RenderedExample {
  return chatTurns(descriptor, example, false)[0] as RenderedExample;
}

/**
 * A conversation as its turns' texts, in order: training text = every `prompt + completion`
 * joined (for text templates the EOS id ends each response that does not end with an end
 * text, between turns too). A single-turn example is one turn, {@link renderExample}'s.
 * Only the first turn carries the instruction. `open`: the last turn is the prompt of a
 * reply still to generate (its completion is "").
 *
 * @example
 * ```ts
 * renderTurns(plain, {
 *   history: [{ role: "user", content: "1" }, { role: "assistant", content: "2" }],
 *   input: "3",
 *   output: "4",
 * });
 * // [{ prompt: "User: 1\n\nAssistant:", completion: " 2" },
 * //  { prompt: "User: 3\n\nAssistant:", completion: " 4" }]
 * ```
 */
export function renderTurns(
  descriptor: TemplateDescriptor,
  example: Example,
  options: { open?: boolean } = {},
): RenderedExample[] {
  if (descriptor.kind === "chat") return chatTurns(descriptor, example, options.open ?? false);
  const { instruction: _stored, ...bare } = descriptor;
  return pairsOf(example).map(({ user, assistant }, k) => {
    if (k > 0) return renderExample(bare, { input: user, output: assistant });
    const first: Example = { input: user, output: assistant };
    if (example.instruction) first.instruction = example.instruction;
    return renderExample(descriptor, first);
  });
}

/**
 * The last turn of a conversation with every earlier turn in its prompt, as the chat template
 * renders a conversation to continue (what `trainOn: "last-turn"` falls back to when a
 * template renders earlier turns differently once later ones follow).
 */
export function renderLastTurn(descriptor: TemplateDescriptor, example: Example): RenderedExample {
  if (descriptor.kind !== "chat" || !example.history?.length) {
    const turns = renderTurns(descriptor, example);
    return turns.at(-1) as RenderedExample;
  }
  const instruction = example.instruction || descriptor.instruction;
  const pairs = pairsOf(example);
  const messages: ChatMessage[] = chatMessages(descriptor, pairs[0]?.user ?? "", instruction);
  messages.push(...(example.history.slice(1) as ChatMessage[]), {
    role: "user",
    content: example.input,
  });
  const context = chatContext(descriptor);
  const prompt = renderChat(descriptor.chatTemplate, messages, true, context);
  const full = renderChat(
    descriptor.chatTemplate,
    [...messages, { role: "assistant", content: example.output }],
    false,
    context,
  );
  if (!full.startsWith(prompt)) {
    throw new InvalidOptionError(
      "template",
      "the chat template renders the prompt differently with and without the answer, so prompt and response cannot be split exactly",
    );
  }
  return { prompt, completion: endAtEndText(descriptor, full.slice(prompt.length)) };
}

/**
 * The training text of one example. The example's own instruction wins over the
 * template's; chat templates get it as a system turn.
 *
 * @example
 * ```ts
 * renderExample(seedTemplate, { input: "1", output: "2" });
 * // { prompt: "User: 1\n\nAssistant: ", completion: "2" }
 * ```
 */
export function renderExample(descriptor: TemplateDescriptor, example: Example): RenderedExample {
  if (descriptor.kind === "chat") return splitChat(descriptor, { ...example, history: [] });
  const instruction = example.instruction || descriptor.instruction || "";
  const values = {
    instruction: instruction === "" ? "" : fill(descriptor.instructionFormat, { instruction }),
    input: example.input,
    output: example.output,
    bos: descriptor.bosToken ?? "",
    eos: descriptor.eosToken ?? "",
  };
  let prompt = fill(descriptor.prompt, values);
  // A prompt without an {instruction} slot still gets the instruction, never loses it.
  if (instruction !== "" && !descriptor.prompt.includes("{instruction}")) {
    prompt = `${instruction}\n\n${prompt}`;
  }
  return { prompt, completion: fill(descriptor.completion, values) };
}

/** Options of {@link renderForInference}. */
export interface InferenceRenderOptions {
  /** Replaces the stored instruction for this call; `""` sends none. */
  instruction?: string;
}

/**
 * The prompt for a raw input at inference: exactly the prompt part of training.
 *
 * @example
 * ```ts
 * const template = await loadTemplate(adapterDir);
 * const prompt = renderForInference(template, "41"); // "User: 41\n\nAssistant: "
 * ```
 */
export function renderForInference(
  descriptor: TemplateDescriptor,
  input: string,
  options: InferenceRenderOptions = {},
): string {
  const instruction = options.instruction ?? descriptor.instruction;
  if (descriptor.kind === "chat") {
    const messages = chatMessages(descriptor, input, instruction || undefined);
    return renderChat(descriptor.chatTemplate, messages, true, chatContext(descriptor));
  }
  const example: Example = { input, output: "" };
  if (instruction) example.instruction = instruction;
  const { instruction: _stored, ...withoutInstruction } = descriptor;
  return renderExample(withoutInstruction, example).prompt;
}

/** Stop strings for generation: the end-of-turn text the responses were trained to end with. */
export function stopStrings(descriptor: TemplateDescriptor): string[] {
  return descriptor.endText !== undefined ? [descriptor.endText] : [];
}

/** Strips the template's response prefix (e.g. an empty think block) from generated text. */
export function cleanResponse(descriptor: TemplateDescriptor, text: string): string {
  let out = text;
  if (descriptor.kind === "chat" && descriptor.responsePrefix) {
    const prefix = descriptor.responsePrefix;
    if (out.startsWith(prefix)) out = out.slice(prefix.length);
    else if (out.startsWith(prefix.trim())) out = out.slice(prefix.trim().length).trimStart();
    // Its tags were special tokens, skipped when decoding: only whitespace is left of it.
    else if (prefix.replace(/<[^<>]*>/g, "").trim() === "") out = out.trimStart();
  }
  if (descriptor.kind === "text") {
    // Literal text the completion format puts before the output (the plain template's
    // leading space) is part of the format, not of the answer.
    const prefix = descriptor.completion.split("{output}")[0]?.replace(/\{(bos|eos)\}/g, "") ?? "";
    if (prefix !== "" && out.startsWith(prefix)) out = out.slice(prefix.length);
  }
  if (descriptor.endText !== undefined && out.endsWith(descriptor.endText)) {
    out = out.slice(0, -descriptor.endText.length);
  }
  return out;
}

/** The instruction every example shares, `"mixed"` when they differ, undefined when none has one. */
export function sharedInstruction(examples: Iterable<Example>): string | "mixed" | undefined {
  let first = true;
  let shared: string | undefined;
  for (const example of examples) {
    const current = example.instruction || undefined;
    if (first) {
      shared = current;
      first = false;
    } else if (current !== shared) {
      return "mixed";
    }
  }
  return shared;
}

/** The summary stored in `TunedModelInfo.template` (the core, backend-neutral shape). */
export function toPromptTemplate(descriptor: TemplateDescriptor): PromptTemplate {
  const out: PromptTemplate = { kind: descriptor.kind === "chat" ? "chat" : descriptor.name };
  if (descriptor.kind === "text") out.prompt = descriptor.prompt;
  if (descriptor.instruction !== undefined) out.instruction = descriptor.instruction;
  return out;
}
