import { describe, expect, it } from "vitest";
import { exitCodeFor } from "../../src/cli/exit-codes.js";
import {
  AbortedError,
  ExportError,
  InvalidOptionError,
  LocalTrainingError,
  ModelLoadError,
  NativeLoadError,
} from "../../src/core/errors.js";
import { fromNativeError, modelLoadErrorKind } from "../../src/local/errors.js";

function nativeError(code: string, message: string, kind?: string): Error {
  return Object.assign(new Error(message), { code }, kind === undefined ? {} : { kind });
}

describe("fromNativeError", () => {
  it("maps model_load to ModelLoadError with kind and path", () => {
    const error = fromNativeError(
      nativeError("model_load", "cannot load x: file looks truncated [truncated]", "truncated"),
      { path: "/models/x" },
    );
    expect(error).toBeInstanceOf(ModelLoadError);
    expect(error.code).toBe("model_load");
    expect((error as ModelLoadError).path).toBe("/models/x");
    expect(modelLoadErrorKind(error)).toBe("truncated");
    expect(error.message).toContain("truncated");
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("maps invalid_option to InvalidOptionError naming the option from the message", () => {
    const error = fromNativeError(
      nativeError("invalid_option", "invalid option topP: must be in (0, 1]"),
    );
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).path).toBe("topP");
    const fallback = fromNativeError(nativeError("invalid_option", "tokenizer error: bad"), {
      option: "text",
    });
    expect((fallback as InvalidOptionError).path).toBe("text");
  });

  it("maps aborted to AbortedError and plain event data as well as Errors", () => {
    expect(
      fromNativeError({ code: "aborted", message: "the operation was aborted" }),
    ).toBeInstanceOf(AbortedError);
  });

  it("maps export_failed to ExportError with the output path, which the CLI exits 3 on", () => {
    const error = fromNativeError(
      nativeError(
        "export_failed",
        "export failed (/tmp/a.gguf): cannot export the adapter on `lm_head`",
      ),
      { path: "/tmp/a.gguf" },
    );
    expect(error).toBeInstanceOf(ExportError);
    expect(error.code).toBe("export_failed");
    expect((error as ExportError).path).toBe("/tmp/a.gguf");
    expect(exitCodeFor(error)).toBe(3);
  });

  it("maps internal and unknown codes to LocalTrainingError keeping the native code", () => {
    const error = fromNativeError(nativeError("internal", "tunekit native core panicked: boom"));
    expect(error).toBeInstanceOf(LocalTrainingError);
    expect(error.message).toContain("(internal)");
    expect(fromNativeError(nativeError("StringExpected", "expected a string"))).toBeInstanceOf(
      LocalTrainingError,
    );
    expect(fromNativeError("weird")).toBeInstanceOf(LocalTrainingError);
  });

  it("passes tunekit errors through unchanged", () => {
    const original = new NativeLoadError("not built");
    expect(fromNativeError(original)).toBe(original);
  });
});
