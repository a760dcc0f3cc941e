/**
 * Token sequences for LoRA training: `{ inputIds, labels }` per example, the prompt masked
 * from the loss (label -100), the response and its end token trained.
 *
 * Rules (the same functions build inference prompts, so training and production agree):
 * - **BOS.** The prompt is tokenized without special tokens; the tokenizer's BOS id is
 *   then put first when the tokenizer adds one by default (what the model saw in
 *   pretraining; `template.addBos` overrides) — unless the rendered text already starts with
 *   it (chat templates that write `{{ bos_token }}`), so there is never a double BOS. The
 *   seed recipe trained without BOS and generated with one; here both sides call
 *   {@link encodePrompt}.
 * - **Prompt/response split.** `prompt + completion` is tokenized as one text and split
 *   after the prompt's tokens, so response tokens are what the model would produce after
 *   that prompt. When a merge crosses the boundary (the joint tokens do not start with the
 *   prompt's tokens), the two parts are tokenized separately instead and the example is
 *   counted in a `boundary` warning.
 * - **End of sequence, exactly once.** When the response already ends with an end token
 *   (the template's end-of-turn text such as `<|im_end|>`, or an EOS id), nothing is added;
 *   otherwise the EOS id is appended.
 * - **Truncation** keeps the head (`maxLength` tokens) and is always reported: a `truncation`
 *   warning counts the examples cut and the tokens lost. An example left with no response
 *   token is an error that lists every such example with its dataset position.
 */
import type { ChatTurn, Example } from "../core/dataset/example.js";
import type { DatasetIssue, DatasetPosition } from "../core/errors.js";
import { InvalidDatasetError, InvalidOptionError } from "../core/errors.js";
import {
  type InferenceRenderOptions,
  type RenderedExample,
  renderForInference,
  renderLastTurn,
  renderTurns,
  stopStrings,
  type TemplateDescriptor,
} from "./prompt/template.js";

/** The label of positions excluded from the loss (PyTorch's `ignore_index`). */
export const IGNORE_INDEX = -100;

/**
 * What sequence building needs from a tokenizer. `LocalModel` provides it through
 * {@link tokenizerFromModel}; tests use a fake.
 */
export interface SequenceTokenizer {
  encode(text: string, options: { addSpecialTokens: boolean }): number[];
  readonly bosTokenId?: number | undefined;
  /** Every id that ends generation (config, generation config, tokenizer config). */
  readonly eosTokenIds: readonly number[];
}

/** The part of `LocalModel` this module uses (kept structural: no native import here). */
export interface TokenizingModel {
  tokenize(text: string, options?: { addSpecialTokens?: boolean }): number[];
  readonly config: {
    readonly bosTokenId: number | undefined;
    readonly eosTokenIds: readonly number[];
  };
}

/** Adapts a loaded model to {@link SequenceTokenizer}. */
export function tokenizerFromModel(model: TokenizingModel): SequenceTokenizer {
  return {
    encode: (text, options) => model.tokenize(text, options),
    bosTokenId: model.config.bosTokenId,
    eosTokenIds: model.config.eosTokenIds,
  };
}

const bosDefaults = new WeakMap<SequenceTokenizer, boolean>();

/** True when the tokenizer puts its BOS id first by default (`add_special_tokens=True`). */
export function tokenizerAddsBos(tokenizer: SequenceTokenizer): boolean {
  const known = bosDefaults.get(tokenizer);
  if (known !== undefined) return known;
  const bos = tokenizer.bosTokenId;
  let adds = false;
  if (bos !== undefined) {
    const plain = tokenizer.encode("a", { addSpecialTokens: false });
    const special = tokenizer.encode("a", { addSpecialTokens: true });
    adds = special[0] === bos && plain[0] !== bos;
  }
  bosDefaults.set(tokenizer, adds);
  return adds;
}

/** Whether a BOS id is put before prompts under `template` (explicit, else the tokenizer's default). */
export function usesBos(
  tokenizer: SequenceTokenizer,
  template: Pick<TemplateDescriptor, "addBos">,
): boolean {
  return tokenizer.bosTokenId !== undefined && (template.addBos ?? tokenizerAddsBos(tokenizer));
}

function withBos(ids: number[], tokenizer: SequenceTokenizer, bos: boolean): number[] {
  const id = tokenizer.bosTokenId;
  if (!bos || id === undefined || ids[0] === id) return ids;
  return [id, ...ids];
}

/**
 * Prompt token ids, exactly as training saw them: use this for inference too (pass the ids
 * to `model.generate`).
 *
 * @example
 * ```ts
 * const ids = encodePrompt(tokenizer, template, renderForInference(template, "41"));
 * const { text } = await model.generate(ids, { stop: stopStrings(template) });
 * ```
 */
export function encodePrompt(
  tokenizer: SequenceTokenizer,
  template: Pick<TemplateDescriptor, "addBos">,
  prompt: string,
): number[] {
  return withBos(
    tokenizer.encode(prompt, { addSpecialTokens: false }),
    tokenizer,
    usesBos(tokenizer, template),
  );
}

/** Ids that end a response: the EOS ids plus the template's end-of-turn token, if it is one token. */
export function endTokenIds(tokenizer: SequenceTokenizer, template: TemplateDescriptor): number[] {
  const ids = new Set(tokenizer.eosTokenIds);
  for (const text of [template.endText, template.eosToken]) {
    if (text === undefined) continue;
    const encoded = tokenizer.encode(text, { addSpecialTokens: false });
    if (encoded.length === 1) ids.add(encoded[0] as number);
  }
  return [...ids];
}

/** The EOS id appended to responses that do not end with an end token. */
export function appendedEosId(tokenizer: SequenceTokenizer, template: TemplateDescriptor): number {
  if (template.eosToken !== undefined) {
    const encoded = tokenizer.encode(template.eosToken, { addSpecialTokens: false });
    if (encoded.length === 1) return encoded[0] as number;
  }
  const id = tokenizer.eosTokenIds[0];
  if (id === undefined) {
    throw new InvalidOptionError(
      "template",
      "the tokenizer has no EOS token, so responses cannot be ended; end the completion template with an explicit stop text",
    );
  }
  return id;
}

/** Everything `generate(rawInput)` needs to prompt the tuned model exactly like training. */
export interface InferencePrompt {
  /** The rendered prompt text. */
  text: string;
  /** Its token ids, BOS as in training: pass these (not the text) to `model.generate`. */
  promptIds: number[];
  /**
   * Ids that end the answer: the model's EOS ids plus the template's end-of-turn token.
   * Needed because special tokens are skipped in generated text, so a stop *string* such as
   * `<|im_end|>` would never match when it is not one of the model's EOS ids.
   */
  eosTokenIds: number[];
  /** Stop strings (the end text, for templates whose end marker is not a single token). */
  stop: string[];
}

/**
 * The prompt for a raw input at inference, built by the same rules as training.
 *
 * @example
 * ```ts
 * const p = inferencePrompt(tokenizerFromModel(model), template, "41");
 * const { text } = await model.generate(p.promptIds, { eosTokenIds: p.eosTokenIds, stop: p.stop });
 * console.log(cleanResponse(template, text));
 * ```
 */
export function inferencePrompt(
  tokenizer: SequenceTokenizer,
  template: TemplateDescriptor,
  input: string,
  options: InferenceRenderOptions & { history?: readonly ChatTurn[] } = {},
): InferencePrompt {
  const eosTokenIds = endTokenIds(tokenizer, template);
  const stop = stopStrings(template);
  if (options.history !== undefined && options.history.length > 0) {
    // A follow-up turn: the earlier turns tokenized exactly as training tokenized them.
    checkHistory(options.history);
    const example: Example = { input, output: "", history: [...options.history] };
    const instruction = options.instruction ?? template.instruction;
    if (instruction) example.instruction = instruction;
    const { instruction: _stored, ...bare } = template;
    const turns = renderTurns(bare, example, { open: true });
    const ends = { endIds: new Set(eosTokenIds), eosId: appendedEosId(tokenizer, template) };
    const tokens = tokenizeTurns(tokenizer, template, turns, ends, { open: true });
    return {
      text: turns.map((t) => t.prompt + t.completion).join(""),
      promptIds: tokens.turns.flatMap((t) => [...t.promptIds, ...t.responseIds]),
      eosTokenIds,
      stop,
    };
  }
  const text = renderForInference(template, input, options);
  return { text, promptIds: encodePrompt(tokenizer, template, text), eosTokenIds, stop };
}

/** Earlier turns must alternate user, assistant, … and end with an assistant turn. */
function checkHistory(history: readonly ChatTurn[]): void {
  history.forEach((turn, i) => {
    const expected = i % 2 === 0 ? "user" : "assistant";
    if (turn?.role !== expected || typeof turn.content !== "string") {
      throw new InvalidOptionError(
        `history[${i}]`,
        `history must alternate user and assistant turns with string content, starting with a user turn; turn ${i} should be a ${expected} turn`,
      );
    }
  });
  if (history.length % 2 !== 0) {
    throw new InvalidOptionError(
      "history",
      "history must end with an assistant turn (the input is the next user turn)",
    );
  }
}

/** One example as tokens, before truncation. */
export interface TokenizedExample {
  /** Prompt ids (BOS included when used). */
  promptIds: number[];
  /** Response ids, ending with an end token. */
  responseIds: number[];
  /** True when the joint tokenization did not start with the prompt's tokens. */
  boundaryMismatch: boolean;
}

/** Tokenizes one rendered example (see the module rules). */
export function tokenizeExample(
  tokenizer: SequenceTokenizer,
  template: TemplateDescriptor,
  rendered: { prompt: string; completion: string },
  ends: { endIds: ReadonlySet<number>; eosId: number },
): TokenizedExample {
  const bos = usesBos(tokenizer, template);
  const promptIds = withBos(
    tokenizer.encode(rendered.prompt, { addSpecialTokens: false }),
    tokenizer,
    bos,
  );
  const joint = withBos(
    tokenizer.encode(rendered.prompt + rendered.completion, { addSpecialTokens: false }),
    tokenizer,
    bos,
  );
  let boundaryMismatch = false;
  let responseIds: number[];
  if (joint.length >= promptIds.length && promptIds.every((id, i) => joint[i] === id)) {
    responseIds = joint.slice(promptIds.length);
  } else {
    boundaryMismatch = true;
    responseIds = tokenizer.encode(rendered.completion, { addSpecialTokens: false });
  }
  const last = responseIds.at(-1);
  if (last === undefined || !ends.endIds.has(last)) responseIds.push(ends.eosId);
  return { promptIds, responseIds, boundaryMismatch };
}

/** A conversation as tokens, turn by turn, before truncation. */
export interface TokenizedTurns {
  /** Per turn: its prompt ids (BOS first on the first turn) and response ids (end token included). */
  turns: { promptIds: number[]; responseIds: number[] }[];
  boundaryMismatch: boolean;
}

/**
 * Tokenizes the turns of a conversation ({@link renderTurns}) by the rules of
 * {@link tokenizeExample}, each turn on its own: turns meet after an end token (a special
 * token or the appended EOS id), where no merge crosses. `open`: the last turn is a prompt
 * only (inference).
 *
 * @example
 * ```ts
 * const ends = { endIds: new Set(endTokenIds(tokenizer, template)), eosId: appendedEosId(tokenizer, template) };
 * const { turns } = tokenizeTurns(tokenizer, template, renderTurns(template, conversation), ends);
 * ```
 */
export function tokenizeTurns(
  tokenizer: SequenceTokenizer,
  template: TemplateDescriptor,
  turns: readonly RenderedExample[],
  ends: { endIds: ReadonlySet<number>; eosId: number },
  options: { open?: boolean } = {},
): TokenizedTurns {
  const out: TokenizedTurns = { turns: [], boundaryMismatch: false };
  turns.forEach((turn, k) => {
    const bosTemplate = k === 0 ? template : { ...template, addBos: false };
    if (options.open && k === turns.length - 1) {
      out.turns.push({
        promptIds: encodePrompt(tokenizer, bosTemplate, turn.prompt),
        responseIds: [],
      });
      return;
    }
    const tokens = tokenizeExample(tokenizer, bosTemplate, turn, ends);
    out.boundaryMismatch ||= tokens.boundaryMismatch;
    out.turns.push({ promptIds: tokens.promptIds, responseIds: tokens.responseIds });
  });
  return out;
}

/** Which assistant turns of a conversation are trained (`local.trainOn`). */
export type TrainOn = "all-turns" | "last-turn";

/** One example laid out as a training sequence, after dropping turns and truncation. */
export interface ExampleLayout {
  inputIds: number[];
  labels: number[];
  /** Tokens before the last response (earlier turns included). */
  promptTokens: number;
  /** Label tokens kept (trained). */
  responseTokens: number;
  /** Length before the last response was cut (after dropping turns). */
  tokens: number;
  /** Tokens cut from the last response by `maxLength`. */
  lost: number;
  /** Earlier turns (user and assistant) dropped to fit `maxLength`. */
  droppedTurns: number;
  /** True when even the last turn's prompt reaches `maxLength` (nothing to train). */
  noRoom: boolean;
  boundaryMismatch: boolean;
}

/**
 * Lays out one example: renders its turns, masks every prompt (and, with `"last-turn"`,
 * every response but the last), and fits it into `maxLength` by dropping whole earlier turns
 * (oldest first, the instruction kept) before cutting the last response.
 *
 * @example
 * ```ts
 * const layout = layoutExample(conversation, { tokenizer, template, maxLength: 256, ends });
 * if (layout.droppedTurns > 0) console.warn(`${layout.droppedTurns} earlier turns dropped`);
 * ```
 */
export function layoutExample(
  example: Example,
  options: {
    tokenizer: SequenceTokenizer;
    template: TemplateDescriptor;
    maxLength: number;
    ends: { endIds: ReadonlySet<number>; eosId: number };
    trainOn?: TrainOn;
  },
): ExampleLayout {
  const { tokenizer, template, maxLength, ends } = options;
  const lastOnly = options.trainOn === "last-turn";
  const history = example.history ?? [];
  const tokenize = (dropped: number) => {
    const current: Example = { ...example, history: history.slice(dropped) };
    let turns: RenderedExample[];
    try {
      turns = renderTurns(template, current);
    } catch (error) {
      // A template that renders earlier turns differently later can still train the last one.
      if (!lastOnly || current.history?.length === 0) throw error;
      turns = [renderLastTurn(template, current)];
    }
    return tokenizeTurns(tokenizer, template, turns, ends);
  };
  const length = (t: TokenizedTurns) =>
    t.turns.reduce((sum, turn) => sum + turn.promptIds.length + turn.responseIds.length, 0);
  let dropped = 0;
  let tokens = tokenize(0);
  while (length(tokens) > maxLength && dropped + 2 <= history.length) {
    dropped += 2;
    tokens = tokenize(dropped);
  }
  const inputIds: number[] = [];
  const labels: number[] = [];
  const last = tokens.turns.length - 1;
  tokens.turns.forEach((turn, k) => {
    inputIds.push(...turn.promptIds);
    labels.push(...turn.promptIds.map(() => IGNORE_INDEX));
    if (k === last) return;
    inputIds.push(...turn.responseIds);
    labels.push(...(lastOnly ? turn.responseIds.map(() => IGNORE_INDEX) : turn.responseIds));
  });
  const promptTokens = inputIds.length;
  const response = tokens.turns[last]?.responseIds ?? [];
  const total = promptTokens + response.length;
  const noRoom = promptTokens >= maxLength;
  const kept = noRoom ? 0 : Math.min(response.length, maxLength - promptTokens);
  inputIds.push(...response.slice(0, kept));
  labels.push(...response.slice(0, kept));
  return {
    inputIds,
    labels,
    promptTokens,
    responseTokens: labels.filter((id) => id !== IGNORE_INDEX).length,
    tokens: total,
    lost: noRoom ? 0 : total - (promptTokens + kept),
    droppedTurns: dropped,
    noRoom,
    boundaryMismatch: tokens.boundaryMismatch,
  };
}

/** One training sequence. */
export interface TrainingSequence {
  /** Index of the example in the dataset. */
  index: number;
  inputIds: number[];
  /** `IGNORE_INDEX` over the prompt, the token ids over the response. */
  labels: number[];
  promptTokens: number;
  /** Response tokens kept (after truncation). */
  responseTokens: number;
  /** Tokens cut by `maxLength` (0 when none). */
  truncatedTokens: number;
  /** Earlier conversation turns dropped to fit `maxLength` (0 when none). */
  droppedTurns: number;
}

/** One example that did not fit `maxLength`. */
export interface TruncatedExample {
  index: number;
  position: DatasetPosition;
  /** Its length before the last response was cut (after dropping turns). */
  tokens: number;
  /** Response tokens cut. */
  lost: number;
  /** Earlier turns dropped (0 for single-turn examples). */
  droppedTurns: number;
}

/** A problem found while building sequences, for progress bars and logs; never silent. */
export type SequenceWarning =
  | {
      type: "truncation";
      message: string;
      maxLength: number;
      truncatedExamples: number;
      tokensLost: number;
      /** Earlier turns dropped, over all examples (conversations only). */
      droppedTurns: number;
      /**
       * The examples cut (all of them), with their dataset positions: `lost` response tokens
       * of the last turn, `droppedTurns` whole earlier turns.
       */
      examples: readonly TruncatedExample[];
    }
  | {
      type: "boundary";
      message: string;
      count: number;
      examples: readonly { index: number; position: DatasetPosition }[];
    };

/** Options of {@link buildSequences}. */
export interface BuildSequencesOptions {
  tokenizer: SequenceTokenizer;
  template: TemplateDescriptor;
  /** Longest sequence, prompt + response + end token. */
  maxLength: number;
  /** The dataset position of example `index` (`dataset.positionOf`); default: its 0-based index. */
  positionOf?: (index: number) => DatasetPosition;
  /** Receives every warning (also returned in the result). */
  onWarning?: (warning: SequenceWarning) => void;
  /**
   * Which assistant turns of a conversation carry the loss: every one (default), or the last
   * only (earlier answers are context).
   */
  trainOn?: TrainOn;
}

/** What {@link buildSequences} returns. */
export interface BuiltSequences {
  sequences: TrainingSequence[];
  warnings: SequenceWarning[];
  /** Total response tokens kept: the tokens the loss is computed on. */
  labelTokens: number;
  longest: number;
}

function checkMaxLength(maxLength: number): void {
  if (!Number.isSafeInteger(maxLength) || maxLength < 2) {
    throw new InvalidOptionError("maxLength", `maxLength must be an integer ≥ 2, got ${maxLength}`);
  }
}

const plural = (n: number, word: string) =>
  `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

/** The issue reported for an example whose prompt leaves no room for its response. */
export function noResponseReason(promptTokens: number, maxLength: number): string {
  return (
    `the prompt alone is ${plural(promptTokens, "token")}, so maxLength ${maxLength} leaves no ` +
    "response token to train on: shorten the input or raise maxLength"
  );
}

/**
 * Renders, tokenizes, masks and truncates every example.
 *
 * @throws InvalidDatasetError listing every example left with no response token.
 * @example
 * ```ts
 * const { sequences, warnings } = buildSequences(dataset.examples, {
 *   tokenizer: tokenizerFromModel(model),
 *   template,
 *   maxLength: 512,
 *   positionOf: (i) => dataset.positionOf(i),
 *   onWarning: (w) => console.warn(w.message),
 * });
 * ```
 */
export function buildSequences(
  examples: readonly Example[],
  options: BuildSequencesOptions,
): BuiltSequences {
  const { tokenizer, template, maxLength } = options;
  checkMaxLength(maxLength);
  const positionOf =
    options.positionOf ?? ((index: number) => ({ kind: "index" as const, value: index }));
  const ends = {
    endIds: new Set(endTokenIds(tokenizer, template)),
    eosId: appendedEosId(tokenizer, template),
  };

  const sequences: TrainingSequence[] = [];
  const issues: DatasetIssue[] = [];
  const truncated: TruncatedExample[] = [];
  const mismatched: { index: number; position: DatasetPosition }[] = [];
  let labelTokens = 0;
  let longest = 0;

  examples.forEach((example, index) => {
    const layout = layoutExample(example, {
      tokenizer,
      template,
      maxLength,
      ends,
      ...(options.trainOn ? { trainOn: options.trainOn } : {}),
    });
    if (layout.boundaryMismatch) mismatched.push({ index, position: positionOf(index) });
    if (layout.noRoom) {
      issues.push({
        position: positionOf(index),
        field: "input",
        reason: noResponseReason(layout.promptTokens, maxLength),
        severity: "error",
      });
      return;
    }
    if (layout.lost > 0 || layout.droppedTurns > 0) {
      truncated.push({
        index,
        position: positionOf(index),
        tokens: layout.tokens,
        lost: layout.lost,
        droppedTurns: layout.droppedTurns,
      });
    }
    sequences.push({
      index,
      inputIds: layout.inputIds,
      labels: layout.labels,
      promptTokens: layout.promptTokens,
      responseTokens: layout.responseTokens,
      truncatedTokens: layout.lost,
      droppedTurns: layout.droppedTurns,
    });
    labelTokens += layout.responseTokens;
    longest = Math.max(longest, layout.inputIds.length);
  });

  if (issues.length > 0) {
    throw new InvalidDatasetError(issues);
  }

  const warnings: SequenceWarning[] = [];
  if (truncated.length > 0) {
    const tokensLost = truncated.reduce((sum, t) => sum + t.lost, 0);
    const droppedTurns = truncated.reduce((sum, t) => sum + t.droppedTurns, 0);
    const where = truncated
      .slice(0, 5)
      .map(
        (t) =>
          `${t.position.kind} ${t.position.value} (` +
          (t.droppedTurns > 0 ? `${plural(t.droppedTurns, "earlier turn")} dropped, ` : "") +
          `${t.tokens} tokens)`,
      )
      .join(", ");
    const cut =
      tokensLost > 0
        ? `${plural(tokensLost, "response token")} cut (end tokens included, so these responses are not trained to stop)`
        : "";
    const drop =
      droppedTurns > 0 ? `${plural(droppedTurns, "earlier turn")} dropped (oldest first)` : "";
    warnings.push({
      type: "truncation",
      message:
        `${plural(truncated.length, "example")} of ${examples.length} exceed maxLength ${maxLength}: ` +
        `${[drop, cut].filter(Boolean).join("; ")}: ${where}${truncated.length > 5 ? ", …" : ""}`,
      maxLength,
      truncatedExamples: truncated.length,
      tokensLost,
      droppedTurns,
      examples: truncated,
    });
  }
  if (mismatched.length > 0) {
    warnings.push({
      type: "boundary",
      message:
        `${plural(mismatched.length, "example")}: the tokenizer merges across the prompt/response ` +
        "boundary; prompt and response were tokenized separately",
      count: mismatched.length,
      examples: mismatched,
    });
  }
  for (const warning of warnings) options.onWarning?.(warning);
  return { sequences, warnings, labelTokens, longest };
}
