/**
 * Multi-turn conversations for local tuning: every assistant turn trained and nothing else
 * (compared token by token with the assistant spans of the template's own rendering), the
 * last turn only on request, whole earlier turns dropped before a response is cut, and
 * follow-up prompts at inference tokenized exactly like training.
 */
import { describe, expect, it } from "vitest";
import type { ChatTurn, Example } from "../../src/core/dataset/example.js";
import { Dataset } from "../../src/core/dataset/index.js";
import { InvalidDatasetError, InvalidOptionError } from "../../src/core/errors.js";
import { createLocalProfile } from "../../src/local/profile.js";
import { renderChat } from "../../src/local/prompt/chat.js";
import { resolveTemplate, type TemplateDescriptor } from "../../src/local/prompt/index.js";
import {
  buildSequences,
  IGNORE_INDEX,
  inferencePrompt,
  type SequenceTokenizer,
} from "../../src/local/sequences.js";
import { parseLocalOptions } from "../../src/local/tuner.js";
import { LLAMA3, SMOLLM2 } from "./prompt/templates.js";

/** Special tokens first, then one id per character; `decode` inverts `encode` exactly. */
const SPECIAL: Record<string, number> = {
  "<s>": 1,
  "</s>": 2,
  "<|im_end|>": 3,
  "<|im_start|>": 4,
  "<|eot_id|>": 5,
  "<|begin_of_text|>": 6,
  "<|start_header_id|>": 7,
  "<|end_header_id|>": 8,
};
const tokenizer: SequenceTokenizer & { decode(id: number): string } = {
  bosTokenId: 1,
  eosTokenIds: [2],
  encode(text, { addSpecialTokens }) {
    const ids: number[] = addSpecialTokens ? [1] : [];
    let i = 0;
    outer: while (i < text.length) {
      for (const [token, id] of Object.entries(SPECIAL)) {
        if (text.startsWith(token, i)) {
          ids.push(id);
          i += token.length;
          continue outer;
        }
      }
      ids.push(1000 + (text.codePointAt(i) as number));
      i++;
    }
    return ids;
  },
  decode(id) {
    const special = Object.entries(SPECIAL).find(([, v]) => v === id);
    return special ? special[0] : String.fromCodePoint(id - 1000);
  },
};

const conversation: Example = {
  instruction: "Count on.",
  history: [
    { role: "user", content: "41" },
    { role: "assistant", content: "42" },
    { role: "user", content: "and then?" },
    { role: "assistant", content: "43" },
  ],
  input: "and after that?",
  output: "44",
};

const chatTemplate = (source: string) =>
  resolveTemplate("auto", {
    tokenizerConfig: { chat_template: source, bos_token: "<s>", eos_token: "</s>" },
  });

/** The messages of an example, as a chat template takes them. */
function messagesOf(example: Example) {
  return [
    ...(example.instruction ? [{ role: "system" as const, content: example.instruction }] : []),
    ...(example.history ?? []),
    { role: "user" as const, content: example.input },
    { role: "assistant" as const, content: example.output },
  ];
}

/**
 * Character flags over the template's own full rendering: true inside an assistant span
 * (the message content and its end-of-turn text), found by rendering the conversation up
 * to each assistant turn with and without it.
 */
function assistantSpans(template: TemplateDescriptor & { kind: "chat" }, example: Example) {
  const messages = messagesOf(example);
  const context = { bosToken: "<s>", eosToken: "</s>" };
  const full = renderChat(template.chatTemplate, messages, false, context);
  const trained = new Array<boolean>(full.length).fill(false);
  messages.forEach((message, i) => {
    if (message.role !== "assistant") return;
    const start = renderChat(template.chatTemplate, messages.slice(0, i), true, context).length;
    const upTo = renderChat(template.chatTemplate, messages.slice(0, i + 1), false, context);
    const end = upTo.lastIndexOf(template.endText as string) + (template.endText as string).length;
    expect(upTo.slice(start, end)).toBe(`${message.content}${template.endText}`);
    trained.fill(true, start, end);
  });
  return { full, trained };
}

describe("multi-turn masks, token by token", () => {
  for (const [name, source] of [
    ["ChatML (SmolLM2)", SMOLLM2],
    ["Llama 3", LLAMA3],
  ] as const) {
    it(`${name}: exactly the assistant spans of the template's rendering are trained`, () => {
      const template = chatTemplate(source);
      if (template.kind !== "chat") throw new Error("expected a chat template");
      const { full, trained } = assistantSpans(template, conversation);
      const [sequence] = buildSequences([conversation], {
        tokenizer,
        template,
        maxLength: 4096,
      }).sequences;
      if (sequence === undefined) throw new Error("no sequence");
      // Walk the tokens over the full text: each token is trained iff its characters are.
      let at = 0;
      sequence.inputIds.forEach((id, i) => {
        if (i === 0 && id === 1 && !full.startsWith("<s>")) return; // the BOS id put first
        const text = tokenizer.decode(id);
        expect(full.slice(at, at + text.length)).toBe(text);
        const inSpan = trained.slice(at, at + text.length);
        expect(new Set(inSpan).size).toBe(1); // no token straddles a span edge
        expect(sequence.labels[i] === IGNORE_INDEX ? false : sequence.labels[i]).toBe(
          inSpan[0] ? id : false,
        );
        at += text.length;
      });
      // What is left is the whitespace after the last end-of-turn, never generated.
      expect(full.slice(at).trim()).toBe("");
      expect(sequence.responseTokens).toBe(9); // "42", "43", "44", each with its end token
    });
  }

  it("plain template: each answer and its EOS id are trained, every user turn is masked", () => {
    const template = resolveTemplate("plain", { tokenizerConfig: { eos_token: "</s>" } });
    const [sequence] = buildSequences([conversation], {
      tokenizer,
      template,
      maxLength: 4096,
    }).sequences;
    const text = (ids: number[]) => ids.map((id) => tokenizer.decode(id)).join("");
    expect(text(sequence?.inputIds ?? [])).toBe(
      "<s>Count on.\n\nUser: 41\n\nAssistant: 42</s>User: and then?\n\nAssistant: 43</s>" +
        "User: and after that?\n\nAssistant: 44</s>",
    );
    const trained = (sequence?.inputIds ?? []).filter((_, i) => sequence?.labels[i] !== -100);
    expect(text(trained)).toBe(" 42</s> 43</s> 44</s>");
  });

  it('trainOn "last-turn" masks the earlier answers', () => {
    const template = chatTemplate(SMOLLM2);
    const all = buildSequences([conversation], { tokenizer, template, maxLength: 4096 });
    const last = buildSequences([conversation], {
      tokenizer,
      template,
      maxLength: 4096,
      trainOn: "last-turn",
    });
    expect(last.sequences[0]?.inputIds).toEqual(all.sequences[0]?.inputIds);
    const trained = (last.sequences[0]?.labels ?? []).filter((l) => l !== IGNORE_INDEX);
    expect(trained.map((id) => tokenizer.decode(id)).join("")).toBe("44<|im_end|>");
    expect(all.labelTokens).toBe(9);
    expect(last.labelTokens).toBe(3);
  });

  it("a template that renders earlier turns differently later: an error, unless last-turn", () => {
    // Earlier assistant turns lose their content once a later turn follows.
    const forgetful = chatTemplate(
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' and not loop.last %}…{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    );
    expect(() =>
      buildSequences([conversation], { tokenizer, template: forgetful, maxLength: 4096 }),
    ).toThrowError(/renders turn 1 of the conversation differently.*trainOn "last-turn"/);
    const built = buildSequences([conversation], {
      tokenizer,
      template: forgetful,
      maxLength: 4096,
      trainOn: "last-turn",
    });
    const trained = (built.sequences[0]?.labels ?? []).filter((l) => l !== IGNORE_INDEX);
    expect(trained.map((id) => tokenizer.decode(id)).join("")).toBe("44<|im_end|>");
  });
});

describe("local.trainOn", () => {
  it('is "all-turns" by default, "last-turn" on request, and nothing else', () => {
    expect(parseLocalOptions({}).trainOn).toBe("all-turns");
    expect(parseLocalOptions({ trainOn: "last-turn" }).trainOn).toBe("last-turn");
    expect(() =>
      parseLocalOptions({ trainOn: "first-turn" as unknown as "last-turn" }),
    ).toThrowError(/local.trainOn: "all-turns" or "last-turn", got "first-turn"/);
  });
});

describe("multi-turn truncation", () => {
  const template = resolveTemplate(
    { prompt: "U:{input}\nA:", completion: "{output}", addBos: false },
    { tokenizerConfig: { eos_token: "</s>" } },
  );
  const turns = (n: number): ChatTurn[] =>
    Array.from({ length: n }, (_, i): ChatTurn[] => [
      { role: "user", content: `q${i}` },
      { role: "assistant", content: `a${i}` },
    ]).flat();
  // "U:qN\nA:" is 7 tokens and "aN" + EOS is 3: each turn pair is 10 tokens.
  const examples: Example[] = [
    { history: turns(3), input: "q3", output: "a3" }, // 40 tokens
    { history: turns(1), input: "q1", output: "a1" }, // 20 tokens
    { input: "q0", output: "a0" + "x".repeat(20) }, // 30 tokens
  ];

  it("drops whole earlier turns, oldest first, before cutting a response, and reports each example", () => {
    const built = buildSequences(examples, {
      tokenizer,
      template,
      maxLength: 25,
      positionOf: (i) => ({ kind: "line", value: i + 1 }),
    });
    const text = (ids: number[]) => ids.map((id) => tokenizer.decode(id)).join("");
    // Two pairs dropped: the last two turns fit (20 tokens); the instruction-less head is q2.
    expect(text(built.sequences[0]?.inputIds ?? [])).toBe("U:q2\nA:a2</s>U:q3\nA:a3</s>");
    expect(built.sequences.map((s) => s.droppedTurns)).toEqual([4, 0, 0]);
    expect(built.sequences.map((s) => s.truncatedTokens)).toEqual([0, 0, 5]);
    expect(built.warnings).toHaveLength(1);
    expect(built.warnings[0]).toMatchObject({
      type: "truncation",
      truncatedExamples: 2,
      tokensLost: 5,
      droppedTurns: 4,
      examples: [
        { index: 0, position: { kind: "line", value: 1 }, droppedTurns: 4, lost: 0 },
        { index: 2, position: { kind: "line", value: 3 }, droppedTurns: 0, lost: 5 },
      ],
    });
    expect(built.warnings[0]?.message).toMatch(
      /^2 examples of 3 exceed maxLength 25: 4 earlier turns dropped \(oldest first\); 5 response tokens cut .*line 1 \(4 earlier turns dropped, 20 tokens\)/,
    );
  });

  it("cuts the last response only once no earlier turn is left", () => {
    const built = buildSequences([examples[0] as Example], { tokenizer, template, maxLength: 8 });
    expect(built.sequences[0]).toMatchObject({ droppedTurns: 6, truncatedTokens: 2 });
  });

  it("the local profile reports dropped turns at the example, before training", () => {
    const dataset = Dataset.from(
      examples.map((e) => ({
        messages: [
          ...(e.history ?? []),
          { role: "user", content: e.input },
          { role: "assistant", content: e.output },
        ],
      })),
    );
    const issues = dataset.validate(createLocalProfile({ tokenizer, template, maxLength: 25 }));
    expect(issues.errors).toEqual([]);
    expect(issues.warnings.map((w) => [w.position?.value, w.field])).toEqual(
      expect.arrayContaining([
        [0, "messages"],
        [2, "output"],
      ]),
    );
  });
});

describe("follow-up turns at inference", () => {
  for (const [name, template] of [
    ["plain", resolveTemplate("plain", { tokenizerConfig: { eos_token: "</s>" } })],
    ["ChatML", chatTemplate(SMOLLM2)],
  ] as const) {
    it(`${name}: the prompt ids are the training ids up to the last answer`, () => {
      const [sequence] = buildSequences([conversation], {
        tokenizer,
        template,
        maxLength: 4096,
      }).sequences;
      const prompt = inferencePrompt(tokenizer, template, conversation.input, {
        instruction: conversation.instruction as string,
        history: conversation.history as ChatTurn[],
      });
      const answerStart = (sequence?.labels ?? []).findLastIndex(
        (l, i, all) => l !== IGNORE_INDEX && all[i - 1] === IGNORE_INDEX,
      );
      expect(prompt.promptIds).toEqual(sequence?.inputIds.slice(0, answerStart));
    });
  }

  it("rejects a history that does not alternate or does not end with an answer", () => {
    const template = chatTemplate(SMOLLM2);
    expect(() =>
      inferencePrompt(tokenizer, template, "x", { history: [{ role: "assistant", content: "a" }] }),
    ).toThrowError(InvalidOptionError);
    expect(() =>
      inferencePrompt(tokenizer, template, "x", { history: [{ role: "user", content: "q" }] }),
    ).toThrowError(/must end with an assistant turn/);
  });
});

describe("multi-turn datasets", () => {
  it("load with every turn: the last pair is input → output, the rest is history", () => {
    const dataset = Dataset.from([
      {
        messages: [
          { role: "system", content: "Count on." },
          { role: "user", content: "41" },
          { role: "assistant", content: "42" },
          { role: "user", content: "and then?" },
          { role: "assistant", content: "43" },
        ],
      },
    ]);
    expect(dataset.examples).toEqual([
      {
        instruction: "Count on.",
        history: [
          { role: "user", content: "41" },
          { role: "assistant", content: "42" },
        ],
        input: "and then?",
        output: "43",
      },
    ]);
    // Exported as messages, they load back the same.
    expect(
      Dataset.from(
        dataset
          .toJSONL()
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l)),
      ).examples,
    ).toEqual(dataset.examples);
  });

  it("are refused by the Gemini API profile at each conversation, before any request", () => {
    const dataset = Dataset.from([
      ...Array.from({ length: 20 }, (_, i) => ({ text_input: `${i}`, output: `${i + 1}` })),
    ]);
    expect(() => dataset.check("gemini")).not.toThrow();
    const chat = Dataset.from(
      Array.from({ length: 20 }, (_, i) => ({
        messages: [
          { role: "user", content: `${i}` },
          { role: "assistant", content: `${i + 1}` },
          ...(i === 3
            ? [
                { role: "user", content: "next" },
                { role: "assistant", content: `${i + 2}` },
              ]
            : []),
        ],
      })),
    );
    let error: unknown;
    try {
      chat.check("gemini");
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidDatasetError);
    const errors = (error as InvalidDatasetError).issues.filter((i) => i.severity === "error");
    expect(errors).toEqual([
      expect.objectContaining({
        position: { kind: "index", value: 3 },
        field: "messages",
        reason: expect.stringMatching(
          /^a multi-turn conversation \(4 turns\): Gemini API tuning takes single turns only/,
        ),
      }),
    ]);
    expect(() => chat.toGeminiExamples()).toThrowError(InvalidDatasetError);
  });
});
