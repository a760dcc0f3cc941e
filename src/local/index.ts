/**
 * `tunekit/local`: models run on this machine by tunekit's native core (Rust, candle).
 *
 * Importing this module does not load the native addon; the first `loadModel` call does,
 * and throws `NativeLoadError` with build instructions (`npm run build:native`) if the
 * addon is missing.
 *
 * @example
 * ```ts
 * import { loadModel } from "tunekit/local";
 *
 * const model = await loadModel("./models/SmolLM2-135M");
 * console.log(model.config.modelType, model.tokenize("Hello").length);
 * for await (const chunk of model.generateStream("Once upon a time", { maxNewTokens: 32 })) {
 *   process.stdout.write(chunk.text);
 * }
 * ```
 * @packageDocumentation
 */
export { fromNativeError, type ModelLoadErrorKind, modelLoadErrorKind } from "./errors.js";
export {
  type FinishReason,
  type GenerateOptions,
  type GenerationChunk,
  type GenerationResult,
  type GenerationStream,
  type LoadModelOptions,
  LocalModel,
  type LocalModelConfig,
  type Logits,
  loadModel,
} from "./model.js";
export { addonFileName, addonPath, NATIVE_PATH_ENV } from "./native.js";
