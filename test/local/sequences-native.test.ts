/**
 * Sequence building over a real tokenizer (the native core's, on a committed fixture
 * model). Like local-model.test.ts it needs `npm run build:native` first.
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { ChatTurn } from "../../src/core/dataset/example.js";
import { type LocalModel, loadModel } from "../../src/local/index.js";
import { renderChat } from "../../src/local/prompt/chat.js";
import {
  readModelTemplateFiles,
  renderExample,
  renderForInference,
  resolveTemplate,
} from "../../src/local/prompt/index.js";
import {
  buildSequences,
  encodePrompt,
  IGNORE_INDEX,
  inferencePrompt,
  tokenizerAddsBos,
  tokenizerFromModel,
} from "../../src/local/sequences.js";

/** Plain ChatML (as OpenHermes and many others ship it); the fixture's context is 128 tokens. */
const CHATML =
  "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const MODEL = join(import.meta.dirname, "..", "fixtures", "models", "llama-tied-gqa");

describe("sequences over the native tokenizer", () => {
  let model: LocalModel;
  beforeAll(async () => {
    model = await loadModel(MODEL);
  });

  it("BOS like the tokenizer, EOS once, prompt ids identical at inference", async () => {
    const tokenizer = tokenizerFromModel(model);
    expect(tokenizerAddsBos(tokenizer)).toBe(true);
    const files = await readModelTemplateFiles(MODEL);
    const templates = [
      resolveTemplate("User: {instruction}{input}\n\nAssistant: ", files),
      resolveTemplate(
        { prompt: "User: {input}\n\nAssistant: ", completion: "{output}{eos}" },
        files,
      ),
      resolveTemplate(CHATML, files),
    ];
    for (const template of templates) {
      const example = { input: "12", output: "13" };
      const { sequences } = buildSequences([example], { tokenizer, template, maxLength: 128 });
      const s = sequences[0]!;
      const bos = model.config.bosTokenId;
      expect(s.inputIds[0]).toBe(bos);
      expect(s.inputIds.filter((id) => id === bos)).toHaveLength(1);
      expect(s.inputIds.at(-1)).toBe(2);
      expect(s.inputIds.filter((id) => id === 2)).toHaveLength(1);
      expect(s.labels.slice(0, s.promptTokens).every((l) => l === IGNORE_INDEX)).toBe(true);

      const rendered = renderExample(template, example);
      const prompt = encodePrompt(tokenizer, template, renderForInference(template, "12"));
      expect(s.inputIds.slice(0, s.promptTokens)).toEqual(prompt);
      expect(
        model.detokenize(s.inputIds.slice(1, s.promptTokens), { skipSpecialTokens: false }),
      ).toBe(rendered.prompt);
      // The generator accepts the same ids at inference.
      const p = inferencePrompt(tokenizer, template, "12");
      expect(p.promptIds).toEqual(prompt);
      const result = await model.generate(p.promptIds, {
        maxNewTokens: 2,
        stop: p.stop,
        eosTokenIds: p.eosTokenIds,
      });
      expect(result.promptTokens).toBe(prompt.length);
    }
  });
});

describe("multi-turn masks over the native tokenizer", () => {
  it("train exactly the assistant spans of the template's own rendering, token by token", async () => {
    const model = await loadModel(MODEL);
    try {
      const tokenizer = tokenizerFromModel(model);
      const template = resolveTemplate(CHATML, await readModelTemplateFiles(MODEL));
      const messages = [
        { role: "system" as const, content: "Count on." },
        { role: "user" as const, content: "41" },
        { role: "assistant" as const, content: "42" },
        { role: "user" as const, content: "and then?" },
        { role: "assistant" as const, content: "43" },
      ];
      const example = {
        instruction: "Count on.",
        history: messages.slice(1, 3) as ChatTurn[],
        input: "and then?",
        output: "43",
      };
      // (Only tokenized here, so longer than the fixture's 128-token context is fine.)
      const { sequences } = buildSequences([example], { tokenizer, template, maxLength: 512 });
      const s = sequences[0]!;
      expect(s.droppedTurns).toBe(0);
      // The template's rendering, with the characters of each assistant message (and the
      // end-of-turn text after it) marked.
      const full = renderChat(CHATML, messages, false);
      const trained = new Array<boolean>(full.length).fill(false);
      for (const [i, m] of messages.entries()) {
        if (m.role !== "assistant") continue;
        const start = renderChat(CHATML, messages.slice(0, i), true).length;
        trained.fill(true, start, start + `${m.content}<|im_end|>`.length);
      }
      // Token by token: its text continues the rendering; it is trained iff its characters are.
      let at = 0;
      for (const [i, id] of s.inputIds.entries()) {
        if (i === 0 && id === model.config.bosTokenId) continue;
        if (id === 2 && s.labels[i] === 2) continue; // an EOS id appended after a trained end text
        const text = model.detokenize([id], { skipSpecialTokens: false });
        expect(full.slice(at, at + text.length), `token ${i}`).toBe(text);
        const flags = new Set(trained.slice(at, at + text.length));
        expect(flags.size, `token ${i} straddles a span edge`).toBe(1);
        expect(s.labels[i] !== IGNORE_INDEX, `token ${i} ${JSON.stringify(text)}`).toBe(
          flags.has(true),
        );
        at += text.length;
      }
      expect(full.slice(at).trim()).toBe("");
    } finally {
      model.dispose();
    }
  });
});
