/**
 * Sequence building over a real tokenizer (the native core's, on a committed fixture
 * model). Like local-model.test.ts it needs `npm run build:native` first.
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type LocalModel, loadModel } from "../../src/local/index.js";
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
