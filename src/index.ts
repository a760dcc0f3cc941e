/**
 * tunekit — tune a language model on input → output examples through one interface,
 * remotely (`tunekit/gemini`, `tunekit/vertex`) or on the device (`tunekit/local`).
 *
 * This entry holds the backend-neutral core: datasets, the shared types, the job state
 * machine and the error hierarchy. It never loads the native addon or opens a connection.
 *
 * @example
 * ```ts
 * import { Dataset } from "tunekit";
 * const data = await Dataset.load("examples/data/increment.jsonl");
 * data.check("gemini"); // throws InvalidDatasetError listing every bad row
 * ```
 * @packageDocumentation
 */
export * from "./core/abort.js";
export * from "./core/dataset/index.js";
export * from "./core/errors.js";
export * from "./core/evaluate/index.js";
export * from "./core/hyperparameters.js";
export * from "./core/job-state.js";
export * from "./core/loss-curve/index.js";
export * from "./core/poll.js";
export * from "./core/retry.js";
export * from "./core/tensorboard/index.js";
export * from "./core/types.js";
