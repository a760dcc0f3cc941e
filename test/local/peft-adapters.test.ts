/**
 * PEFT adapters made by Python with PEFT's module-selection rules or base-changing inits
 * (test/fixtures/train/peft-targeting, written by scripts/fixtures/make_peft_targeting_fixtures.py),
 * opened through the library as a user would. The numbers are checked in the native tests
 * (native/core/tests/peft_targeting.rs); here: they open and generate, or fail with a
 * ModelLoadError that names the reason and the fix.
 */
import { describe, expect, it } from "vitest";
import { ModelLoadError } from "../../src/core/errors.js";
import { LocalTunedModel, modelLoadErrorKind } from "../../src/local/index.js";

const CASES = "test/fixtures/train/peft-targeting";

describe("PEFT adapters trained elsewhere", () => {
  it("layers_to_transform, exclude_modules and regex target_modules open and generate", async () => {
    for (const name of [
      "layers-list",
      "exclude-regex",
      "regex-targets-qwen",
      "all-linear-string",
    ]) {
      const model = await LocalTunedModel.open(`${CASES}/${name}/adapter`, { template: "plain" });
      expect(typeof (await model.generate("1", { maxOutputTokens: 3 })), name).toBe("string");
    }
  });

  it("an unconverted PiSSA adapter is refused naming PEFT's conversion option, not mis-computed", async () => {
    const model = await LocalTunedModel.open(`${CASES}/pissa-unconverted/adapter`, {
      template: "plain",
    });
    const error = await model.generate("1", { maxOutputTokens: 3 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(modelLoadErrorKind(error)).toBe("unsupported_adapter");
    expect((error as Error).message).toMatch(
      /init_lora_weights = "pissa".*path_initial_model_for_weight_conversion/s,
    );
  });

  it("an adapter on lm_head is refused by name", async () => {
    const model = await LocalTunedModel.open(`${CASES}/lm-head-regex/adapter`, {
      template: "plain",
    });
    const error = await model.generate("1", { maxOutputTokens: 3 }).catch((e: unknown) => e);
    expect(modelLoadErrorKind(error)).toBe("unsupported_adapter");
    expect((error as Error).message).toMatch(/lm_head/);
  });
});
