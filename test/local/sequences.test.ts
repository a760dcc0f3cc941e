import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Example } from "../../src/core/dataset/example.js";
import { Dataset } from "../../src/core/dataset/index.js";
import { InvalidDatasetError, InvalidOptionError } from "../../src/core/errors.js";
import { createLocalProfile } from "../../src/local/profile.js";
import {
  type ModelTemplateFiles,
  renderExample,
  renderForInference,
  resolveTemplate,
  type TemplateDescriptor,
} from "../../src/local/prompt/index.js";
import {
  buildSequences,
  encodePrompt,
  IGNORE_INDEX,
  inferencePrompt,
  type SequenceTokenizer,
  type SequenceWarning,
  tokenizerAddsBos,
  tokenizerFromModel,
} from "../../src/local/sequences.js";
import { LLAMA3, SMOLLM2 } from "./prompt/templates.js";

/**
 * A deterministic fake tokenizer: special tokens are matched first (even without
 * `addSpecialTokens`, as HF tokenizers do), then a few merges by longest match, then one
 * id per character. The merge `": "` lets a prompt ending in ":" merge with a response
 * starting with " ", to exercise the boundary rule.
 */
const SPECIAL: Record<string, number> = {
  "<s>": 1,
  "</s>": 2,
  "<|im_end|>": 3,
  "<|im_start|>": 4,
  "<|eot_id|>": 5,
};
const MERGES = ["Assistant", "User", "\n\n", ": ", "system", "user", "assistant"];
const MERGE_ID = (i: number) => 100 + i;

function fakeTokenizer(options: { addsBos?: boolean; eos?: number[] } = {}): SequenceTokenizer & {
  calls: number;
} {
  const tokenizer = {
    calls: 0,
    bosTokenId: 1,
    eosTokenIds: options.eos ?? [2],
    encode(text: string, { addSpecialTokens }: { addSpecialTokens: boolean }): number[] {
      tokenizer.calls++;
      const ids: number[] = addSpecialTokens && options.addsBos !== false ? [1] : [];
      let i = 0;
      outer: while (i < text.length) {
        for (const [token, id] of Object.entries(SPECIAL)) {
          if (text.startsWith(token, i)) {
            ids.push(id);
            i += token.length;
            continue outer;
          }
        }
        for (const [m, merge] of MERGES.entries()) {
          if (text.startsWith(merge, i)) {
            ids.push(MERGE_ID(m));
            i += merge.length;
            continue outer;
          }
        }
        ids.push(1000 + (text.codePointAt(i) as number));
        i += 1;
      }
      return ids;
    },
  };
  return tokenizer;
}

const id = (ch: string) => 1000 + (ch.codePointAt(0) as number);
const seed = resolveTemplate("User: {instruction}{input}\n\nAssistant: ", {
  tokenizerConfig: { bos_token: "<s>", eos_token: "</s>" },
});
const chatml: ModelTemplateFiles = {
  tokenizerConfig: { chat_template: SMOLLM2, bos_token: "<s>", eos_token: "</s>" },
};

describe("buildSequences: masking, BOS and EOS", () => {
  it("masks the prompt, trains the response plus EOS, and puts BOS first like the tokenizer does", () => {
    const tokenizer = fakeTokenizer({ addsBos: true });
    expect(tokenizerAddsBos(tokenizer)).toBe(true);
    const { sequences, warnings, labelTokens } = buildSequences([{ input: "1", output: "2" }], {
      tokenizer,
      template: seed,
      maxLength: 64,
    });
    const promptIds = encodePrompt(tokenizer, seed, "User: 1\n\nAssistant: ");
    expect(promptIds[0]).toBe(1);
    expect(promptIds).toEqual([
      1,
      ...tokenizer.encode("User: 1\n\nAssistant: ", { addSpecialTokens: false }),
    ]);
    expect(sequences).toEqual([
      {
        index: 0,
        inputIds: [...promptIds, id("2"), 2],
        labels: [...promptIds.map(() => IGNORE_INDEX), id("2"), 2],
        promptTokens: promptIds.length,
        responseTokens: 2,
        truncatedTokens: 0,
        droppedTurns: 0,
      },
    ]);
    expect(warnings).toEqual([]);
    expect(labelTokens).toBe(2);
  });

  it("inference prompt ids equal the training prompt ids (the seed's BOS mismatch cannot happen)", () => {
    for (const addsBos of [true, false]) {
      const tokenizer = fakeTokenizer({ addsBos });
      for (const template of [seed, resolveTemplate("auto", chatml)]) {
        const { sequences } = buildSequences([{ input: "41", output: "42" }], {
          tokenizer,
          template,
          maxLength: 256,
        });
        const s = sequences[0]!;
        const inference = encodePrompt(tokenizer, template, renderForInference(template, "41"));
        expect(s.inputIds.slice(0, s.promptTokens)).toEqual(inference);
        expect(inference[0] === 1).toBe(addsBos);
      }
    }
  });

  it("a chat template's end-of-turn token ends the response exactly once (no extra EOS)", () => {
    const template = resolveTemplate("auto", chatml);
    for (const eos of [[2], [3], [2, 3]]) {
      const { sequences } = buildSequences([{ input: "41", output: "42" }], {
        tokenizer: fakeTokenizer({ eos }),
        template,
        maxLength: 256,
      });
      const s = sequences[0]!;
      const response = s.inputIds.slice(s.promptTokens);
      expect(response).toEqual([id("4"), id("2"), 3]);
      expect(s.labels.slice(s.promptTokens)).toEqual(response);
      expect(s.labels.slice(0, s.promptTokens).every((l) => l === IGNORE_INDEX)).toBe(true);
    }
  });

  it("an {eos} written by a custom template is not doubled", () => {
    const template = resolveTemplate(
      { prompt: "Q {input} A", completion: "{output}{eos}" },
      { tokenizerConfig: { eos_token: "</s>" } },
    );
    const { sequences } = buildSequences([{ input: "1", output: "2" }], {
      tokenizer: fakeTokenizer(),
      template,
      maxLength: 64,
    });
    expect(sequences[0]!.inputIds.slice(-2)).toEqual([id("2"), 2]);
  });

  it("never doubles a BOS the chat template writes itself; addBos: false drops it", () => {
    const files: ModelTemplateFiles = {
      tokenizerConfig: { chat_template: LLAMA3, bos_token: "<s>", eos_token: "<|eot_id|>" },
    };
    const tokenizer = fakeTokenizer({ addsBos: true, eos: [2, 5] });
    const { sequences } = buildSequences([{ input: "1", output: "2" }], {
      tokenizer,
      template: resolveTemplate("auto", files),
      maxLength: 256,
    });
    const ids = sequences[0]!.inputIds;
    expect(ids.slice(0, 2)).toEqual([
      1,
      tokenizer.encode("<|start_header_id|>", { addSpecialTokens: false })[0],
    ]);
    expect(ids.filter((t) => t === 1)).toHaveLength(1);
    expect(ids.at(-1)).toBe(5); // <|eot_id|>, once
    expect(ids.filter((t) => t === 5)).toHaveLength(2); // end of the user turn, end of the response

    const noBos = resolveTemplate({ prompt: "{input}=", addBos: false }, {});
    const plain = buildSequences([{ input: "1", output: "2" }], {
      tokenizer,
      template: noBos,
      maxLength: 9,
    });
    expect(plain.sequences[0]!.inputIds).toEqual([id("1"), id("="), id("2"), 2]);
  });

  it("tokenizes prompt and response separately when a merge crosses the boundary, and says so", () => {
    const template = resolveTemplate({ prompt: "Assistant:{input}" }, {});
    const warnings: SequenceWarning[] = [];
    const { sequences } = buildSequences(
      [
        { input: "", output: " 2" }, // ":" + " 2" would merge into ": "
        { input: "1", output: "2" },
      ],
      { tokenizer: fakeTokenizer(), template, maxLength: 64, onWarning: (w) => warnings.push(w) },
    );
    const s = sequences[0]!;
    expect(s.inputIds.slice(s.promptTokens)).toEqual([id(" "), id("2"), 2]);
    expect(s.inputIds.slice(0, s.promptTokens)).toEqual(
      encodePrompt(fakeTokenizer(), template, renderForInference(template, "")),
    );
    expect(warnings).toMatchObject([{ type: "boundary", count: 1, examples: [{ index: 0 }] }]);
  });

  it("inferencePrompt: training's prompt ids, and the end-of-turn id among the EOS ids", () => {
    const tokenizer = fakeTokenizer({ addsBos: true, eos: [2] });
    const template = resolveTemplate({ instruction: "Add one." }, chatml);
    const p = inferencePrompt(tokenizer, template, "41");
    const { sequences } = buildSequences([{ input: "41", output: "42" }], {
      tokenizer,
      template,
      maxLength: 256,
    });
    const s = sequences[0]!;
    expect(p.promptIds).toEqual(s.inputIds.slice(0, s.promptTokens));
    expect(p.text).toBe(
      renderExample(template, { input: "41", output: "", instruction: "Add one." }).prompt,
    );
    expect(p.eosTokenIds.sort()).toEqual([2, 3]); // </s> and <|im_end|>
    expect(p.stop).toEqual(["<|im_end|>"]);
    expect(inferencePrompt(tokenizer, template, "41", { instruction: "" }).text).not.toContain(
      "Add one.",
    );
  });

  it("adapts a LocalModel-shaped object", () => {
    const calls: unknown[] = [];
    const tokenizer = tokenizerFromModel({
      tokenize: (text, options) => {
        calls.push([text, options]);
        return [7];
      },
      config: { bosTokenId: 1, eosTokenIds: [2, 3] },
    });
    expect(tokenizer.encode("x", { addSpecialTokens: false })).toEqual([7]);
    expect(calls).toEqual([["x", { addSpecialTokens: false }]]);
    expect(tokenizer.eosTokenIds).toEqual([2, 3]);
  });
});

describe("buildSequences: truncation is reported, never silent", () => {
  const examples: Example[] = [
    { input: "1", output: "2" }, // 10 prompt tokens (BOS off) + 2
    { input: "1", output: "23456" }, // response 6 → total 16
    { input: "1", output: "234567890" }, // response 10 → total 20
  ];
  const template = resolveTemplate({ prompt: "User: {input}\n\nAssistant: ", addBos: false }, {});
  const tokenizer = fakeTokenizer();
  const promptLength = encodePrompt(
    tokenizer,
    template,
    renderExample(template, examples[0]!).prompt,
  ).length;

  it("cuts at maxLength and counts truncated examples and lost tokens exactly", () => {
    const maxLength = promptLength + 4;
    const seen: SequenceWarning[] = [];
    const built = buildSequences(examples, {
      tokenizer,
      template,
      maxLength,
      positionOf: (i) => ({ kind: "line", value: i + 1 }),
      onWarning: (w) => seen.push(w),
    });
    expect(built.sequences.map((s) => s.inputIds.length)).toEqual([
      promptLength + 2,
      maxLength,
      maxLength,
    ]);
    expect(built.sequences.map((s) => s.truncatedTokens)).toEqual([0, 2, 6]);
    expect(built.sequences[2]!.labels.at(-1)).toBe(id("5")); // the EOS was cut too
    expect(seen).toEqual(built.warnings);
    expect(built.warnings).toHaveLength(1);
    const warning = built.warnings[0]!;
    expect(warning).toMatchObject({
      type: "truncation",
      maxLength,
      truncatedExamples: 2,
      tokensLost: 8,
      examples: [
        { index: 1, position: { kind: "line", value: 2 }, lost: 2 },
        { index: 2, position: { kind: "line", value: 3 }, lost: 6 },
      ],
    });
    expect(warning.message).toMatch(/^2 examples of 3 exceed maxLength \d+: 8 response tokens cut/);
    expect(warning.message).toContain("line 2");
  });

  it("an example with no response token left is an error listing each such example", () => {
    const long: Example[] = [
      ...examples,
      { input: "12345678901234567890", output: "2" },
      { input: "x".repeat(40), output: "2" },
    ];
    let error: unknown;
    try {
      buildSequences(long, {
        tokenizer,
        template,
        maxLength: promptLength + 5,
        positionOf: (i) => ({ kind: "line", value: i + 1 }),
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidDatasetError);
    const issues = (error as InvalidDatasetError).issues;
    expect(issues.map((i) => i.position)).toEqual([
      { kind: "line", value: 4 },
      { kind: "line", value: 5 },
    ]);
    expect(issues[0]!.reason).toMatch(
      /prompt alone is \d+ tokens, so maxLength \d+ leaves no response token/,
    );
    expect((error as Error).message).toMatch(/line 4, field "input"/);
  });

  it("rejects a bad maxLength", () => {
    expect(() => buildSequences(examples, { tokenizer, template, maxLength: 1 })).toThrow(
      InvalidOptionError,
    );
  });
});

describe("the local limit profile", () => {
  let dir: string;
  let dataset: Dataset;
  const template = resolveTemplate({ prompt: "{input}=", addBos: false }, {});
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tunekit-profile-"));
    const lines = [
      { text_input: "1", output: "2" }, // 2 + 2 = 4 tokens
      { text_input: "1", output: "2345678" }, // 2 + 8 = 10
      { text_input: "123456789", output: "0" }, // prompt 10
      { text_input: "7", output: "8</s>9" }, // output holds the end text → warning
    ];
    await writeFile(join(dir, "data.jsonl"), `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`);
    dataset = await Dataset.load(join(dir, "data.jsonl"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reports over-long examples (warnings) and prompts that fill maxLength (errors) with line numbers", () => {
    const tokenizer = fakeTokenizer();
    const templateWithEnd: TemplateDescriptor = { ...template, endText: "</s>" };
    const result = dataset.validate(
      createLocalProfile({ tokenizer, template: templateWithEnd, maxLength: 8 }),
    );
    expect(result.profile).toBe("local");
    expect(result.errors).toEqual([
      {
        position: { kind: "line", value: 3 },
        field: "input",
        reason: expect.stringMatching(/prompt alone is 10 tokens, so maxLength 8/),
        severity: "error",
      },
      {
        // One line with the maxLength that would fit every prompt.
        reason: expect.stringMatching(
          /^1 example has a prompt of maxLength 8 tokens or more.*longest prompt is 10 tokens: raise maxLength above it \(at least 12/,
        ),
        severity: "error",
      },
    ]);
    expect(result.warnings).toEqual([
      {
        position: { kind: "line", value: 2 },
        field: "output",
        reason:
          "example is 10 tokens (prompt 2 + response 8); maxLength 8 cuts the last 2 response tokens, end token included",
        severity: "warning",
      },
      {
        position: { kind: "line", value: 4 },
        field: "output",
        reason: expect.stringContaining('end-of-turn text "</s>"'),
        severity: "warning",
      },
      {
        reason: expect.stringMatching(
          /^1 example exceed maxLength 8 \(longest 12 tokens, 2 response tokens would be cut\)/,
        ),
        severity: "warning",
      },
    ]);
  });

  it("strict turns truncation into errors; within limits there is nothing to say", () => {
    const tokenizer = fakeTokenizer();
    const strict = dataset.validate(
      createLocalProfile({ tokenizer, template, maxLength: 9, strict: true }),
    );
    expect(strict.errors.map((e) => e.position?.value)).toEqual([2, 3, undefined, undefined]);
    const roomy = dataset.validate(createLocalProfile({ tokenizer, template, maxLength: 64 }));
    expect(roomy.issues).toEqual([]);
    expect(() => createLocalProfile({ tokenizer, template, maxLength: 0 })).toThrow(
      InvalidOptionError,
    );
  });
});
