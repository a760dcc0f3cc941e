import { describe, expect, it } from "vitest";
import { foldInstruction } from "../../src/core/dataset/gemini-wire.js";
import { InvalidOptionError } from "../../src/core/errors.js";
import {
  assertTunedModelId,
  generateTunedModelId,
  normalizeBaseModel,
  parseTuningName,
  TUNED_MODEL_ID_PATTERN,
} from "../../src/gemini/names.js";
import {
  decodeDescription,
  encodeDescription,
  renderPrompt,
  TEMPLATE_MARKER,
  templateFromExamples,
} from "../../src/gemini/template.js";

describe("generateTunedModelId", () => {
  it("builds the id from the display name plus a random suffix, like the service", () => {
    expect(generateTunedModelId("Sentence Translator")).toMatch(
      /^sentence-translator-[a-z0-9]{6}$/,
    );
  });

  it("always matches the documented pattern, whatever the display name", () => {
    const names = [
      undefined,
      "",
      "   ",
      "42 answers",
      "Ünïcödé Çafé",
      "日本語のモデル",
      "x".repeat(200),
      "a--b__c..d",
      "-leading and trailing-",
      "9",
      "Model 2.0 (beta) — final!",
    ];
    for (const name of names) {
      for (let i = 0; i < 20; i++) {
        const id = generateTunedModelId(name);
        expect(id, String(name)).toMatch(TUNED_MODEL_ID_PATTERN);
        expect(id.length).toBeLessThanOrEqual(40);
      }
    }
    expect(generateTunedModelId(undefined)).toMatch(/^tuned-model-/);
    expect(generateTunedModelId("42 answers")).toMatch(/^answers-/);
  });

  it("gives different ids to two calls with the same name", () => {
    const ids = new Set(Array.from({ length: 50 }, () => generateTunedModelId("same")));
    expect(ids.size).toBe(50);
  });

  it("is reproducible with an injected random source", () => {
    expect(generateTunedModelId("a", () => 0)).toBe("a-aaaaaa");
  });
});

describe("names", () => {
  it("parses model names, operation names and bare ids", () => {
    expect(parseTuningName("tunedModels/abc")).toEqual({
      tunedModel: "tunedModels/abc",
      id: "abc",
    });
    expect(parseTuningName("abc")).toEqual({ tunedModel: "tunedModels/abc", id: "abc" });
    expect(parseTuningName("tunedModels/abc/operations/op1")).toEqual({
      tunedModel: "tunedModels/abc",
      id: "abc",
      operation: "tunedModels/abc/operations/op1",
    });
  });

  it("rejects names of other collections", () => {
    for (const bad of ["models/gemini", "tunedModels/", "", "tunedModels/a/permissions/p"]) {
      expect(() => parseTuningName(bad), bad).toThrow(InvalidOptionError);
    }
  });

  it("checks user-given ids against the pattern", () => {
    expect(() => assertTunedModelId("good-id-1")).not.toThrow();
    for (const bad of ["Bad", "1abc", "abc-", "a".repeat(41), "a_b"]) {
      expect(() => assertTunedModelId(bad), bad).toThrow(InvalidOptionError);
    }
  });

  it("prefixes bare base model ids with models/", () => {
    expect(normalizeBaseModel("gemini-1.5-flash-001-tuning")).toBe(
      "models/gemini-1.5-flash-001-tuning",
    );
    expect(normalizeBaseModel("models/x")).toBe("models/x");
    expect(normalizeBaseModel("tunedModels/y")).toBe("tunedModels/y");
  });
});

describe("the training template travels in the description", () => {
  const template = { instruction: "Translate to French.\nBe brief.", kind: "gemini-folded" };

  it("appends one marker line and reads it back, keeping the user's text", () => {
    const stored = encodeDescription("My translator", template) as string;
    expect(stored.split("\n").at(-1)?.startsWith(TEMPLATE_MARKER)).toBe(true);
    expect(decodeDescription(stored)).toEqual({ description: "My translator", template });
  });

  it("works with no user description, and with no template", () => {
    expect(decodeDescription(encodeDescription(undefined, template))).toEqual({
      description: undefined,
      template,
    });
    expect(encodeDescription("plain", undefined)).toBe("plain");
    expect(decodeDescription("plain")).toEqual({ description: "plain", template: undefined });
    expect(decodeDescription(undefined)).toEqual({ description: undefined, template: undefined });
  });

  it("leaves a description with a broken marker line untouched", () => {
    const text = `notes\n${TEMPLATE_MARKER} {not json`;
    expect(decodeDescription(text)).toEqual({ description: text, template: undefined });
  });

  it("takes the shared instruction of the examples, or reports them mixed", () => {
    expect(templateFromExamples([{ input: "a", output: "b" }])).toBeUndefined();
    expect(
      templateFromExamples([
        { input: "a", output: "b", instruction: "I" },
        { input: "c", output: "d", instruction: "I" },
      ]),
    ).toEqual({ instruction: "I", kind: "gemini-folded" });
    expect(
      templateFromExamples([
        { input: "a", output: "b", instruction: "I" },
        { input: "c", output: "d" },
      ]),
    ).toBe("mixed");
  });

  it("renders prompts exactly as training folded them", () => {
    for (const input of ["x", "", "multi\nline"]) {
      expect(renderPrompt(template, input)).toBe(
        foldInstruction({ instruction: template.instruction, input }),
      );
    }
    expect(renderPrompt(undefined, "raw")).toBe("raw");
  });
});
