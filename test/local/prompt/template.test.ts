import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Example } from "../../../src/core/dataset/example.js";
import { InvalidOptionError, ModelLoadError } from "../../../src/core/errors.js";
import {
  cleanResponse,
  loadTemplate,
  type ModelTemplateFiles,
  readModelTemplateFiles,
  renderExample,
  renderForInference,
  resolveTemplate,
  saveTemplate,
  sharedInstruction,
  stopStrings,
  type TemplateDescriptor,
  toPromptTemplate,
} from "../../../src/local/prompt/index.js";
import { GEMMA3, LLAMA3, MISTRAL, QWEN3_LIKE, QWEN25, SMOLLM2 } from "./templates.js";

const ex = (input: string, output: string, instruction?: string): Example =>
  instruction === undefined ? { input, output } : { input, output, instruction };

const model = (chat_template: unknown, bos: string, eos: string): ModelTemplateFiles => ({
  tokenizerConfig: { chat_template, bos_token: bos, eos_token: eos },
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tunekit-prompt-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("chat templates split exactly at the generation prompt", () => {
  it("SmolLM2 (ChatML, default system prompt)", () => {
    const t = resolveTemplate("auto", model(SMOLLM2, "<|im_start|>", "<|im_end|>"));
    expect(t).toMatchObject({
      kind: "chat",
      source: "tokenizer_config.json",
      endText: "<|im_end|>",
    });
    expect(renderExample(t, ex("41", "42"))).toEqual({
      prompt:
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" +
        "<|im_start|>user\n41<|im_end|>\n<|im_start|>assistant\n",
      completion: "42<|im_end|>",
    });
    // The instruction replaces the default system prompt.
    expect(renderExample(t, ex("41", "42", "Add one.")).prompt).toBe(
      "<|im_start|>system\nAdd one.<|im_end|>\n<|im_start|>user\n41<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(stopStrings(t)).toEqual(["<|im_end|>"]);
  });

  it("Llama 3 (BOS written by the template, content trimmed)", () => {
    const t = resolveTemplate(undefined, model(LLAMA3, "<|begin_of_text|>", "<|eot_id|>"));
    expect(renderExample(t, ex(" 41 ", "42", "Add one."))).toEqual({
      prompt:
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nAdd one.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\n41<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
      completion: "42<|eot_id|>",
    });
    expect(t.endText).toBe("<|eot_id|>");
  });

  it("Qwen2.5 from chat_template.jinja, which wins over tokenizer_config.json", () => {
    const files: ModelTemplateFiles = {
      chatTemplateJinja: QWEN25,
      tokenizerConfig: { chat_template: SMOLLM2, eos_token: "<|im_end|>" },
    };
    const t = resolveTemplate("chat", files);
    expect(t).toMatchObject({ kind: "chat", source: "chat_template.jinja" });
    expect(renderExample(t, ex("41", "42"))).toEqual({
      prompt:
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
        "<|im_start|>user\n41<|im_end|>\n<|im_start|>assistant\n",
      completion: "42<|im_end|>",
    });
  });

  it("Gemma 3 (system folded into the user turn, model role, BOS in text)", () => {
    const t = resolveTemplate("auto", model(GEMMA3, "<bos>", "<eos>"));
    expect(t).toMatchObject({ systemRole: true, endText: "<end_of_turn>" });
    expect(renderExample(t, ex("hi", "hello", "Be brief."))).toEqual({
      prompt: "<bos><start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n",
      completion: "hello<end_of_turn>",
    });
  });

  it("Mistral v0.1 (no system role: the instruction leads the user turn; EOS in the turn)", () => {
    const t = resolveTemplate("auto", model(MISTRAL, "<s>", "</s>"));
    expect(t).toMatchObject({ systemRole: false, endText: "</s>" });
    expect(renderExample(t, ex("41", "42", "Add one."))).toEqual({
      prompt: "<s>[INST] Add one.\n\n41 [/INST]",
      completion: "42</s>",
    });
  });

  it("named templates in tokenizer_config.json (list form)", () => {
    const files = model(
      [
        { name: "default", template: SMOLLM2 },
        { name: "tool_use", template: QWEN25 },
      ],
      "<s>",
      "</s>",
    );
    expect(resolveTemplate("auto", files)).toMatchObject({ templateName: "default" });
    const tool = resolveTemplate({ kind: "chat", templateName: "tool_use" }, files);
    expect(renderExample(tool, ex("1", "2")).prompt).toContain("You are Qwen");
    expect(() => resolveTemplate({ templateName: "nope" }, files)).toThrow(
      /no chat template named "nope"/,
    );
  });

  it("a response prefix (empty think block) is trained and stripped from generated text", () => {
    const files = model(QWEN3_LIKE, "<|im_start|>", "<|im_end|>");
    const thinking = resolveTemplate("auto", files);
    expect(thinking).toMatchObject({ kind: "chat", responsePrefix: "<think>\n\n</think>\n\n" });
    expect(renderExample(thinking, ex("41", "42"))).toEqual({
      prompt: "<|im_start|>user\n41<|im_end|>\n<|im_start|>assistant\n",
      completion: "<think>\n\n</think>\n\n42<|im_end|>",
    });
    expect(cleanResponse(thinking, "<think>\n\n</think>\n\n42")).toBe("42");
    expect(cleanResponse(thinking, "\n\n\n\n42")).toBe("42"); // <think> decoded as a skipped special token

    const direct = resolveTemplate({ templateArgs: { enable_thinking: false } }, files);
    expect(renderExample(direct, ex("41", "42"))).toEqual({
      prompt: "<|im_start|>user\n41<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
      completion: "42<|im_end|>",
    });
  });

  it("a Jinja string given as the template is used instead of the model's", () => {
    const t = resolveTemplate(LLAMA3, model(SMOLLM2, "<|begin_of_text|>", "<|eot_id|>"));
    expect(t).toMatchObject({ kind: "chat", source: "custom" });
    expect(renderExample(t, ex("1", "2")).completion).toBe("2<|eot_id|>");
  });

  it("reports a template whose prompt is not a prefix of the full conversation", () => {
    const broken =
      "{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}>>>{% endif %}";
    expect(() => resolveTemplate("auto", model(broken, "<s>", "</s>"))).toThrow(InvalidOptionError);
    expect(() => resolveTemplate("auto", model(broken, "<s>", "</s>"))).toThrow(
      /differ at character \d+/,
    );
  });
});

describe("text templates", () => {
  const deepseek: ModelTemplateFiles = {
    tokenizerConfig: { bos_token: "<｜begin▁of▁sentence｜>", eos_token: "<｜end▁of▁sentence｜>" },
  };

  it("the seed's custom template: prompt and response, EOS left to the token ids", () => {
    const t = resolveTemplate("User: {instruction}{input}\n\nAssistant: ", deepseek);
    expect(t).toMatchObject({ kind: "text", name: "custom", completion: "{output}" });
    expect(t.endText).toBeUndefined();
    expect(renderExample(t, ex("1", "2"))).toEqual({
      prompt: "User: 1\n\nAssistant: ",
      completion: "2",
    });
    expect(renderExample(t, ex("1", "2", "Increment: "))).toEqual({
      prompt: "User: Increment: 1\n\nAssistant: ",
      completion: "2",
    });
  });

  it("a prompt without an {instruction} slot still carries the instruction", () => {
    const t = resolveTemplate("Q: {input}\nA: ", deepseek);
    expect(renderExample(t, ex("1", "2", "Add one."))).toEqual({
      prompt: "Add one.\n\nQ: 1\nA: ",
      completion: "2",
    });
    expect(renderForInference(t, "1", { instruction: "Add one." })).toBe("Add one.\n\nQ: 1\nA: ");
  });

  it("{eos} in the completion writes the EOS text and makes it the end text", () => {
    const t = resolveTemplate(
      { prompt: "User: {instruction}{input}\n\nAssistant: ", completion: "{output}{eos}" },
      deepseek,
    );
    expect(renderExample(t, ex("1", "2")).completion).toBe("2<｜end▁of▁sentence｜>");
    expect(t.endText).toBe("<｜end▁of▁sentence｜>");
  });

  it("plain is the default without a chat template; a non-empty instruction gets a blank line", () => {
    const t = resolveTemplate("auto", deepseek);
    expect(t).toMatchObject({ kind: "text", name: "plain" });
    expect(renderExample(t, ex("1", "2"))).toEqual({
      prompt: "User: 1\n\nAssistant:",
      completion: expect.stringMatching(/^ 2/),
    });
    expect(renderExample(t, ex("1", "2", "Add one.")).prompt).toBe(
      "Add one.\n\nUser: 1\n\nAssistant:",
    );
  });

  it("rejects mistakes with the option named", () => {
    const error = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as InvalidOptionError;
      }
      throw new Error("expected a throw");
    };
    expect(error(() => resolveTemplate("Q: {question}", deepseek)).path).toBe("template.prompt");
    expect(error(() => resolveTemplate("Q: no slot", deepseek)).message).toMatch(
      /must contain \{input\}/,
    );
    expect(
      error(() => resolveTemplate({ prompt: "{input}", completion: "x" }, deepseek)).path,
    ).toBe("template.completion");
    expect(error(() => resolveTemplate("chat", deepseek)).message).toMatch(/has no chat template/);
    expect(error(() => resolveTemplate({ kind: "weird" }, deepseek)).path).toBe("template.kind");
    expect(error(() => resolveTemplate({ prompt: "{input}{eos}" }, {})).message).toMatch(/\{eos\}/);
  });
});

describe("inference prompts equal training prompts", () => {
  const cases: [string, TemplateDescriptor][] = [
    ["smollm2", resolveTemplate("auto", model(SMOLLM2, "<|im_start|>", "<|im_end|>"))],
    ["llama3", resolveTemplate("auto", model(LLAMA3, "<|begin_of_text|>", "<|eot_id|>"))],
    ["gemma3", resolveTemplate({ instruction: "Be brief." }, model(GEMMA3, "<bos>", "<eos>"))],
    ["mistral", resolveTemplate({ instruction: "Add one." }, model(MISTRAL, "<s>", "</s>"))],
    [
      "seed",
      resolveTemplate(
        { prompt: "User: {instruction}{input}\n\nAssistant: ", instruction: "Inc " },
        {},
      ),
    ],
    ["plain", resolveTemplate("plain", {})],
  ];
  it.each(cases)("%s", (_name, t) => {
    for (const input of ["41", "forty-one", " spaced "]) {
      expect(renderForInference(t, input)).toBe(renderExample(t, { input, output: "x" }).prompt);
      expect(renderForInference(t, input, { instruction: "Other." })).toBe(
        renderExample(t, { input, output: "x", instruction: "Other." }).prompt,
      );
    }
  });

  it("an empty instruction at inference sends none", () => {
    const t = resolveTemplate({ prompt: "{instruction}{input}=", instruction: "Inc " }, {});
    expect(renderForInference(t, "1")).toBe("Inc 1=");
    expect(renderForInference(t, "1", { instruction: "" })).toBe("1=");
  });

  it("the shared instruction of a dataset", () => {
    expect(sharedInstruction([ex("1", "2", "A"), ex("2", "3", "A")])).toBe("A");
    expect(sharedInstruction([ex("1", "2", "A"), ex("2", "3")])).toBe("mixed");
    expect(sharedInstruction([ex("1", "2")])).toBeUndefined();
  });
});

describe("tunekit.json", () => {
  it("round-trips the descriptor beside the PEFT files, keeping other keys", async () => {
    await writeFile(join(dir, "adapter_config.json"), "{}");
    await writeFile(join(dir, "tunekit.json"), JSON.stringify({ baseModel: "org/m", steps: 3 }));
    const t = resolveTemplate({ instruction: "Be brief." }, model(GEMMA3, "<bos>", "<eos>"));
    await saveTemplate(dir, t);
    const stored = JSON.parse(await readFile(join(dir, "tunekit.json"), "utf8"));
    expect(stored).toMatchObject({ format: "tunekit", version: 1, baseModel: "org/m", steps: 3 });
    expect(stored.template).toEqual(t);
    expect(await loadTemplate(dir)).toEqual(t);
    expect((await readdir(dir)).sort()).toEqual(["adapter_config.json", "tunekit.json"]);
    // Re-applied at inference without the base model's files.
    const loaded = (await loadTemplate(dir)) as TemplateDescriptor;
    expect(renderForInference(loaded, "hi")).toBe(
      "<bos><start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n",
    );
    expect(toPromptTemplate(loaded)).toEqual({ kind: "chat", instruction: "Be brief." });
  });

  it("no tunekit.json (e.g. an adapter from Python) → undefined; a bad one → ModelLoadError", async () => {
    expect(await loadTemplate(dir)).toBeUndefined();
    await writeFile(
      join(dir, "tunekit.json"),
      JSON.stringify({ template: { version: 1, kind: "text" } }),
    );
    await expect(loadTemplate(dir)).rejects.toThrow(/template\.prompt must be a string/);
    await writeFile(
      join(dir, "tunekit.json"),
      JSON.stringify({ template: { version: 9, kind: "text" } }),
    );
    await expect(loadTemplate(dir)).rejects.toThrow(/newer tunekit/);
    await writeFile(join(dir, "tunekit.json"), "not json");
    await expect(loadTemplate(dir)).rejects.toBeInstanceOf(ModelLoadError);
  });

  it("reads a model directory's template files", async () => {
    const modelDir = join(dir, "model");
    await mkdir(modelDir);
    await writeFile(
      join(modelDir, "tokenizer_config.json"),
      JSON.stringify({ bos_token: { content: "<s>", lstrip: false }, eos_token: "</s>" }),
    );
    await writeFile(join(modelDir, "chat_template.jinja"), SMOLLM2);
    const files = await readModelTemplateFiles(modelDir);
    const t = resolveTemplate("auto", files);
    expect(t).toMatchObject({
      kind: "chat",
      source: "chat_template.jinja",
      bosToken: "<s>",
      eosToken: "</s>",
    });
  });
});

describe("cleanResponse with a text template", () => {
  it("drops the literal text the completion format puts before the output", () => {
    const plain = resolveTemplate("plain", {});
    expect(cleanResponse(plain, " 42")).toBe("42");
    const custom = resolveTemplate({ prompt: "Q: {input}\nA:", completion: " => {output}" }, {});
    expect(cleanResponse(custom, " => 42")).toBe("42");
    expect(cleanResponse(custom, "42")).toBe("42");
  });
});
