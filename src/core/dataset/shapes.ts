/**
 * Recognises the record shapes tunekit accepts and normalises each record to an `Example`.
 *
 * Detection looks at which keys a record has, in this order:
 * 1. `textInput` or `text_input` → Gemini (`output` is the answer);
 * 2. `messages` or `contents` → single-turn chat;
 * 3. `prompt` or `completion` → prompt/completion;
 * 4. `instruction` or `input` → Alpaca (`output` is the answer). This also covers
 *    tunekit's own `{ input, output, instruction? }` (what `toJSONL` writes).
 * Other keys are ignored. With `options.columns` no detection happens.
 */
import type { ChatTurn, ColumnMapping, DatasetShape, Example } from "./example.js";
import { describeType, isBlank } from "./text.js";

/** Receives the problems found in one record. */
export interface RecordSink {
  report(field: string | undefined, reason: string): void;
}

export type PlainRecord = Record<string, unknown>;

/** Words used in messages, e.g. "Gemini (textInput + output)". */
export const SHAPE_LABELS: Readonly<Record<DatasetShape, string>> = {
  gemini: "Gemini (textInput/text_input + output)",
  alpaca: "Alpaca (instruction/input + output)",
  "prompt-completion": "prompt + completion",
  chat: "chat messages",
  columns: "column mapping",
};

/** The shape of one record, or `undefined` when none matches. */
export function detectShape(record: PlainRecord): DatasetShape | undefined {
  if (record.textInput !== undefined || record.text_input !== undefined) return "gemini";
  if (record.messages !== undefined || record.contents !== undefined) return "chat";
  if (record.prompt !== undefined || record.completion !== undefined) return "prompt-completion";
  if (record.instruction !== undefined || record.input !== undefined) return "alpaca";
  return undefined;
}

/** The reason given for a record whose shape is not recognised. */
export function unknownShapeReason(record: PlainRecord): string {
  const keys = Object.keys(record);
  const shown = keys.slice(0, 8).join(", ") + (keys.length > 8 ? ", …" : "");
  return (
    `unknown shape (keys: ${keys.length === 0 ? "none" : shown}); expected textInput/text_input + output ` +
    "(Gemini), instruction/input + output (Alpaca), prompt + completion, or messages (chat), " +
    "or pass options.columns to name the input and output fields"
  );
}

/**
 * Reads a required text field. Reports `missing`, non-string and (unless `allowEmpty`)
 * blank values; returns the string when it is usable.
 */
function readText(
  value: unknown,
  field: string,
  role: "input" | "output" | "instruction",
  allowEmpty: boolean,
  sink: RecordSink,
): string | undefined {
  if (typeof value === "string") {
    if (!allowEmpty && isBlank(value)) {
      sink.report(field, `empty ${role}`);
      return undefined;
    }
    return value;
  }
  if (value === undefined) sink.report(field, `missing ${role} (no "${field}" field)`);
  else sink.report(field, `${role} must be a string, got ${describeType(value)}`);
  return undefined;
}

/** Reads an optional text field: absent is fine (""), a non-string is reported. */
function readOptionalText(
  value: unknown,
  field: string,
  role: "input" | "instruction",
  sink: RecordSink,
): string | undefined {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  sink.report(field, `${role} must be a string, got ${describeType(value)}`);
  return undefined;
}

function build(input: string, output: string, instruction: string): Example {
  return instruction.length === 0 ? { input, output } : { input, output, instruction };
}

function fromGemini(record: PlainRecord, sink: RecordSink): Example | undefined {
  const camel = record.textInput;
  const snake = record.text_input;
  let ok = true;
  if (camel !== undefined && snake !== undefined && camel !== snake) {
    sink.report("text_input", "both textInput and text_input are set and differ; keep one");
    ok = false;
  }
  const field = camel !== undefined ? "textInput" : "text_input";
  const input = readText(camel ?? snake, field, "input", false, sink);
  const output = readText(record.output, "output", "output", false, sink);
  if (!ok || input === undefined || output === undefined) return undefined;
  return { input, output };
}

function fromAlpaca(record: PlainRecord, sink: RecordSink): Example | undefined {
  const instruction = readOptionalText(record.instruction, "instruction", "instruction", sink);
  const input = readOptionalText(record.input, "input", "input", sink);
  const output = readText(record.output, "output", "output", false, sink);
  if (instruction === undefined || input === undefined || output === undefined) return undefined;
  if (isBlank(instruction) && isBlank(input)) {
    sink.report("input", "empty input: instruction and input are both empty");
    return undefined;
  }
  return build(input, output, instruction);
}

function fromPromptCompletion(record: PlainRecord, sink: RecordSink): Example | undefined {
  const input = readText(record.prompt, "prompt", "input", false, sink);
  const output = readText(record.completion, "completion", "output", false, sink);
  if (input === undefined || output === undefined) return undefined;
  return { input, output };
}

/** Reads a turn's text: `content` as a string or `[{ text }]`, or Gemini `parts: [{ text }]`. */
function turnText(turn: PlainRecord, field: string, sink: RecordSink): string | undefined {
  const content = turn.content !== undefined ? turn.content : turn.parts;
  const name = turn.content !== undefined ? "content" : "parts";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    let text = "";
    for (let i = 0; i < content.length; i++) {
      const part: unknown = content[i];
      const partText =
        typeof part === "object" && part !== null ? (part as PlainRecord).text : undefined;
      if (typeof partText !== "string") {
        sink.report(
          `${field}.${name}[${i}]`,
          "only text parts are supported (expected an object with a string `text`)",
        );
        return undefined;
      }
      text += partText;
    }
    return text;
  }
  if (content === undefined) sink.report(field, "turn has no content (or parts)");
  else sink.report(`${field}.${name}`, `content must be a string, got ${describeType(content)}`);
  return undefined;
}

/**
 * Chat: an optional first `system` turn (→ instruction), then user and assistant (or Gemini
 * `model`) turns that alternate, starting with a user turn and ending with an assistant turn.
 * The last pair becomes `input` → `output`; earlier pairs become `history`. A Vertex-style
 * `systemInstruction` beside `contents` also becomes the instruction.
 */
function fromChat(record: PlainRecord, sink: RecordSink): Example | undefined {
  const key = record.messages !== undefined ? "messages" : "contents";
  const turns = record[key];
  if (!Array.isArray(turns)) {
    sink.report(key, `${key} must be an array of turns, got ${describeType(turns)}`);
    return undefined;
  }
  let system: string | undefined;
  // Each turn with its index in the record (for positions) and whether its text was readable.
  const dialogue: (ChatTurn & { at: number; readable: boolean })[] = [];
  let previous: { role: ChatTurn["role"]; at: number } | undefined;
  let ok = true;
  for (let i = 0; i < turns.length; i++) {
    const turn: unknown = turns[i];
    const field = `${key}[${i}]`;
    if (typeof turn !== "object" || turn === null || Array.isArray(turn)) {
      sink.report(field, `a turn must be an object, got ${describeType(turn)}`);
      ok = false;
      continue;
    }
    const rawRole = (turn as PlainRecord).role;
    if (rawRole === "system") {
      if (i !== 0) {
        sink.report(`${field}.role`, "a system turn is only allowed as the first turn");
        ok = false;
      }
      system = turnText(turn as PlainRecord, field, sink);
      if (system === undefined) ok = false;
      continue;
    }
    if (rawRole !== "user" && rawRole !== "assistant" && rawRole !== "model") {
      sink.report(
        `${field}.role`,
        `unknown role ${typeof rawRole === "string" ? `"${rawRole}"` : describeType(rawRole)}; expected system, user, assistant or model`,
      );
      ok = false;
      continue;
    }
    const role = rawRole === "user" ? "user" : "assistant";
    if (previous === undefined && role === "assistant") {
      sink.report(
        `${field}.role`,
        "the conversation must start with a user turn (after an optional system turn)",
      );
      ok = false;
    } else if (previous !== undefined && previous.role === role) {
      sink.report(
        `${field}.role`,
        `two ${role} turns in a row (${key}[${previous.at}] and ${key}[${i}]); user and assistant turns must alternate`,
      );
      ok = false;
    }
    previous = { role, at: i };
    const content = turnText(turn as PlainRecord, field, sink);
    if (content === undefined) ok = false;
    else if (role === "assistant" && isBlank(content)) {
      sink.report(field, "empty output");
      ok = false;
    }
    dialogue.push({ role, content: content ?? "", at: i, readable: content !== undefined });
  }
  const users = dialogue.filter((t) => t.role === "user");
  if (users.length === 0) {
    sink.report(key, "no user turn (a chat example needs one user and one assistant turn)");
    ok = false;
  }
  if (!dialogue.some((t) => t.role === "assistant")) {
    sink.report(key, "no assistant turn: missing output");
    ok = false;
  } else if (previous?.role === "user") {
    sink.report(
      `${key}[${previous.at}]`,
      "the conversation ends with a user turn; it must end with the assistant turn to learn",
    );
    ok = false;
  }
  // Earlier user turns must say something (the last one may be empty beside a system turn).
  for (const turn of users.slice(0, -1)) {
    if (turn.readable && isBlank(turn.content)) {
      sink.report(`${key}[${turn.at}]`, "empty user turn");
      ok = false;
    }
  }
  if (record.systemInstruction !== undefined) {
    const text =
      typeof record.systemInstruction === "object" && record.systemInstruction !== null
        ? turnText(record.systemInstruction as PlainRecord, "systemInstruction", sink)
        : typeof record.systemInstruction === "string"
          ? record.systemInstruction
          : undefined;
    if (text === undefined) {
      if (typeof record.systemInstruction !== "object") {
        sink.report(
          "systemInstruction",
          `systemInstruction must be a string or a turn, got ${describeType(record.systemInstruction)}`,
        );
      }
      ok = false;
    } else if (system !== undefined) {
      sink.report(
        "systemInstruction",
        "both a system turn and systemInstruction are set; keep one",
      );
      ok = false;
    } else system = text;
  }
  const user = dialogue.at(-2)?.content;
  const assistant = dialogue.at(-1)?.content;
  if (!ok || user === undefined || assistant === undefined) return undefined;
  if (isBlank(user) && (system === undefined || isBlank(system))) {
    sink.report(key, "empty input: the user turn is empty");
    return undefined;
  }
  const example = build(user, assistant, system ?? "");
  if (dialogue.length > 2) {
    example.history = dialogue.slice(0, -2).map(({ role, content }) => ({ role, content }));
  }
  return example;
}

function own(record: PlainRecord, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function fromColumns(
  record: PlainRecord,
  columns: ColumnMapping,
  sink: RecordSink,
): Example | undefined {
  const input = readText(own(record, columns.input), columns.input, "input", true, sink);
  const output = readText(own(record, columns.output), columns.output, "output", false, sink);
  let instruction: string | undefined = "";
  if (columns.instruction !== undefined) {
    instruction = readOptionalText(
      own(record, columns.instruction),
      columns.instruction,
      "instruction",
      sink,
    );
  }
  if (input === undefined || output === undefined || instruction === undefined) return undefined;
  if (isBlank(input) && isBlank(instruction)) {
    sink.report(columns.input, "empty input");
    return undefined;
  }
  return build(input, output, instruction);
}

/** Normalises one record of a known shape; reports every problem and returns `undefined` if any. */
export function normalizeRecord(
  record: PlainRecord,
  shape: DatasetShape,
  columns: ColumnMapping | undefined,
  sink: RecordSink,
): Example | undefined {
  switch (shape) {
    case "gemini":
      return fromGemini(record, sink);
    case "alpaca":
      return fromAlpaca(record, sink);
    case "prompt-completion":
      return fromPromptCompletion(record, sink);
    case "chat":
      return fromChat(record, sink);
    case "columns":
      return columns === undefined ? undefined : fromColumns(record, columns, sink);
  }
}
