import { describe, expect, it } from "vitest";
import { InvalidOptionError } from "../../src/core/errors.js";
import { parseHyperparameters } from "../../src/core/hyperparameters.js";

describe("parseHyperparameters", () => {
  it("accepts positive integers and one learning-rate option", () => {
    expect(parseHyperparameters({ epochCount: 3, batchSize: 4, learningRate: 1e-4 })).toEqual({
      epochCount: 3,
      batchSize: 4,
      learningRate: 1e-4,
    });
    expect(parseHyperparameters({ learningRateMultiplier: 2 })).toEqual({
      learningRateMultiplier: 2,
    });
    expect(parseHyperparameters(undefined)).toEqual({});
  });

  it.each([
    [{ epochCount: 0 }, "hyperparameters.epochCount"],
    [{ epochCount: 1.5 }, "hyperparameters.epochCount"],
    [{ batchSize: -1 }, "hyperparameters.batchSize"],
    [{ batchSize: "4" }, "hyperparameters.batchSize"],
    [{ learningRate: 0 }, "hyperparameters.learningRate"],
    [{ learningRate: Number.NaN }, "hyperparameters.learningRate"],
    [
      { learningRateMultiplier: Number.POSITIVE_INFINITY },
      "hyperparameters.learningRateMultiplier",
    ],
  ])("rejects %j naming %s", (value, path) => {
    const error = (() => {
      try {
        parseHyperparameters(value);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).path).toBe(path);
    expect((error as InvalidOptionError).message).toContain(path);
  });

  it("rejects both learning-rate options, naming both", () => {
    expect(() => parseHyperparameters({ learningRate: 1e-3, learningRateMultiplier: 1 })).toThrow(
      /learningRate.*learningRateMultiplier/,
    );
  });

  it("rejects unknown keys by name", () => {
    expect(() => parseHyperparameters({ epochs: 3 })).toThrow(/Unknown hyperparameter: epochs/);
  });
});
