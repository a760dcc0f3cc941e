/**
 * The embedded demo model (`models/demo-counting/`, made by scripts/demo-model/pretrain.py):
 * it loads through the native core, its tokenizer covers the quick start's plain template,
 * and it has learned to count. Needs `npm run build:native` first.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type LocalModel, loadModel } from "../../src/local/index.js";

const DEMO = join(import.meta.dirname, "..", "..", "models", "demo-counting");

/** Parameter count of a Llama model with tied embeddings, from its config. */
function llamaParams(c: LocalModel["config"]): number {
  const q = c.hiddenSize * c.numAttentionHeads * c.headDim;
  const kv = 2 * c.hiddenSize * c.numKeyValueHeads * c.headDim;
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  const layer = 2 * q + kv + mlp + 2 * c.hiddenSize; // q and o, k and v, MLP, two norms
  return c.vocabSize * c.hiddenSize + c.numHiddenLayers * layer + c.hiddenSize;
}

describe("the demo model", () => {
  let model: LocalModel;

  beforeAll(async () => {
    model = await loadModel(DEMO);
  });

  it("is a tiny Llama-architecture model, committed in under 10 MB", () => {
    expect(model.config).toMatchObject({
      modelType: "llama",
      hiddenSize: 192,
      intermediateSize: 512,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      headDim: 48,
      vocabSize: 512,
      maxPositionEmbeddings: 256,
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    expect(llamaParams(model.config)).toBe(1_722_048);
    const config = JSON.parse(readFileSync(join(DEMO, "config.json"), "utf8"));
    expect(config.architectures).toEqual(["LlamaForCausalLM"]);
    const bytes = readdirSync(DEMO).reduce((sum, f) => sum + statSync(join(DEMO, f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(10 * 1024 * 1024);
  });

  it("is labelled as a demo, with its license", () => {
    const readme = readFileSync(join(DEMO, "README.md"), "utf8");
    expect(readme).toMatch(/not a useful model/i);
    expect(readme).toContain("Apache-2.0");
    expect(readme).toContain("scripts/demo-model/pretrain.py");
  });

  it("tokenizes the plain prompt template and round-trips it", () => {
    const text = "User: 1,999 and minus forty two\n\nAssistant: 2,000</s>";
    const ids = model.tokenize(text, { addSpecialTokens: false });
    expect(model.detokenize(ids, { skipSpecialTokens: false })).toBe(text);
    expect(ids.at(-1)).toBe(2); // "</s>" is the EOS token, not its characters
    expect(model.tokenize("User: 41", { addSpecialTokens: true })[0]).toBe(1); // BOS
    // Digits are single tokens, so a number is spelled digit by digit.
    expect(model.tokenize("-12,345", { addSpecialTokens: false })).toHaveLength(7);
    for (const piece of ["User", "Assistant", " twenty", " hundred", " thousand", " million"]) {
      expect(model.tokenize(piece, { addSpecialTokens: false })).toHaveLength(1);
    }
  });

  it("does not answer the quick start's task before tuning", async () => {
    // The corpus never shows the `User: …\n\nAssistant: …` format: that is the LoRA's job.
    const heldout = readFileSync(
      join(DEMO, "..", "..", "examples", "data", "increment-heldout.jsonl"),
      "utf8",
    )
      .trim()
      .split("\n")
      .slice(0, 20)
      .map((line) => JSON.parse(line) as { text_input: string; output: string });
    let right = 0;
    for (const { text_input, output } of heldout) {
      const out = await model.generate(`User: ${text_input}\n\nAssistant: `, {
        maxNewTokens: 16,
        addSpecialTokens: false,
      });
      if (out.text.trim() === output) right++;
    }
    expect(right).toBeLessThanOrEqual(2);
  });

  it.each([
    ["41 42 43", " 44 45 46"],
    ["1,998 1,999", " 2,000 2,001"],
    ["-3 -2 -1", " 0 1 2"],
    ["twenty two twenty three", " twenty four twenty five"],
    ["ninety eight, ninety nine", ", one hundred, one hundred one"],
    ["the number after 1,999 is", " 2,000."],
  ])("counts on greedily: %j", async (prompt, next) => {
    const out = await model.generate(prompt, { maxNewTokens: 24, eosTokenIds: [] });
    expect(out.text.startsWith(next)).toBe(true);
  });
});
