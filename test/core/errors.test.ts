import { describe, expect, it } from "vitest";
import {
  ApiError,
  InvalidDatasetError,
  isTunekitError,
  RateLimitError,
  TunekitError,
  TuningFailedError,
} from "../../src/core/errors.js";

describe("error hierarchy", () => {
  it("sets name and a stable code per class", () => {
    const error = new RateLimitError("slow down", {
      httpStatus: 429,
      status: "RESOURCE_EXHAUSTED",
    });
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toBeInstanceOf(TunekitError);
    expect(error.name).toBe("RateLimitError");
    expect(error.code).toBe("rate_limited");
    expect(error.httpStatus).toBe(429);
    expect(isTunekitError(error)).toBe(true);
    expect(isTunekitError(new Error("x"))).toBe(false);
  });

  it("serialises to a plain object with code and details", () => {
    const error = new TuningFailedError("tunedModels/a", "failed at step 3");
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: "TuningFailedError",
      code: "tuning_failed",
      message: "failed at step 3",
      jobName: "tunedModels/a",
    });
  });

  it("summarises dataset issues with positions and counts the rest", () => {
    const issues = Array.from({ length: 7 }, (_, i) => ({
      position: { kind: "line" as const, value: i + 1 },
      field: "output",
      reason: "empty output",
      severity: "error" as const,
    }));
    const error = new InvalidDatasetError(issues, { source: "data.jsonl" });
    expect(error.message).toContain("Invalid dataset in data.jsonl: 7 problems");
    expect(error.message).toContain('line 1, field "output": empty output');
    expect(error.message).toContain("… and 2 more");
    expect(error.issues).toHaveLength(7);
  });
});
