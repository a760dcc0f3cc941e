import { z } from "zod";
import { InvalidOptionError } from "./errors.js";

/**
 * Training hyperparameters every backend understands. Exactly one of
 * `learningRate` (absolute) and `learningRateMultiplier` (relative to the
 * service's default) may be given; omitted values take the backend's default.
 */
export interface Hyperparameters {
  epochCount: number;
  batchSize: number;
  learningRate?: number;
  learningRateMultiplier?: number;
}

const positiveInt = (name: string) =>
  z
    .number({ error: `${name} must be a number` })
    .int({ error: `${name} must be a whole number` })
    .positive({ error: `${name} must be at least 1` });

const positiveFinite = (name: string) =>
  z
    .number({ error: `${name} must be a number` })
    .refine(Number.isFinite, { error: `${name} must be finite` })
    .refine((v) => v > 0, { error: `${name} must be greater than 0` });

const hyperparametersSchema = z
  .object({
    epochCount: positiveInt("epochCount").optional(),
    batchSize: positiveInt("batchSize").optional(),
    learningRate: positiveFinite("learningRate").optional(),
    learningRateMultiplier: positiveFinite("learningRateMultiplier").optional(),
  })
  .strict();

/**
 * Checks user-supplied hyperparameters and returns them unchanged when valid.
 *
 * @throws InvalidOptionError naming the offending field (`hyperparameters.batchSize`, …),
 *   or both learning-rate fields when both are set.
 * @example
 * ```ts
 * parseHyperparameters({ epochCount: 3, learningRate: 1e-4 }); // ok
 * parseHyperparameters({ learningRate: 1e-4, learningRateMultiplier: 2 }); // throws
 * ```
 */
export function parseHyperparameters(value: unknown): Partial<Hyperparameters> {
  if (value === undefined) return {};
  const result = hyperparametersSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue?.path.map(String).join(".") ?? "";
    const path = key ? `hyperparameters.${key}` : "hyperparameters";
    const message =
      issue?.code === "unrecognized_keys"
        ? `Unknown hyperparameter${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.join(", ")} (known: epochCount, batchSize, learningRate, learningRateMultiplier)`
        : `Invalid ${path}: ${issue?.message ?? "invalid value"}`;
    throw new InvalidOptionError(path, message);
  }
  const parsed = result.data;
  if (parsed.learningRate !== undefined && parsed.learningRateMultiplier !== undefined) {
    throw new InvalidOptionError(
      "hyperparameters.learningRate",
      "Give either hyperparameters.learningRate or hyperparameters.learningRateMultiplier, not both",
      { hint: "learningRate is absolute; learningRateMultiplier scales the service's default" },
    );
  }
  // Rebuild without undefined keys so exactOptionalPropertyTypes holds for callers.
  const out: Partial<Hyperparameters> = {};
  if (parsed.epochCount !== undefined) out.epochCount = parsed.epochCount;
  if (parsed.batchSize !== undefined) out.batchSize = parsed.batchSize;
  if (parsed.learningRate !== undefined) out.learningRate = parsed.learningRate;
  if (parsed.learningRateMultiplier !== undefined)
    out.learningRateMultiplier = parsed.learningRateMultiplier;
  return out;
}
