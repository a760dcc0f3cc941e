/**
 * `tunekit/local`: models run on this machine by tunekit's native core (Rust, candle).
 *
 * Importing this module does not load the native addon; the first `loadModel` call does,
 * and throws `NativeLoadError` naming the platform and what to do if no addon fits (the
 * prebuilt package `tunekit-<platform>` is missing, or a build from source is needed:
 * `npx tunekit build-native`).
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
export { LocalBaseModel, type OpenBaseModelOptions } from "./base-model.js";
export { type DemoFiles, demoFiles } from "./demo.js";
export { fromNativeError, type ModelLoadErrorKind, modelLoadErrorKind } from "./errors.js";
export {
  exportGgufAdapter,
  exportGgufModel,
  type GgufAdapterExportOptions,
  type GgufDtype,
  type GgufExportResult,
  type GgufModelExportOptions,
} from "./gguf.js";
export {
  checkModelDirectory,
  DEFAULT_HUB_ENDPOINT,
  type HubEnv,
  hfHome,
  hubCacheDir,
  hubEndpoint,
  hubToken,
  isOffline,
  MODEL_METADATA_FILES,
  type ModelDirectoryCheck,
  type ModelDownloadEvent,
  type ModelSpec,
  normalizeEtag,
  parseModelSpec,
  type ResolvedModel,
  type ResolveModelOptions,
  repoFolderName,
  resolveModel,
  SAFETENSORS_INDEX,
} from "./hub/index.js";
export {
  type LocalReporter,
  type LocalRunRecord,
  type LocalStepMetrics,
  LocalTuningJob,
} from "./job.js";
export {
  type BaseWeights,
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
export { addonFileName, addonPath, localAddonPath, NATIVE_PATH_ENV } from "./native.js";
export { nativeTarget, PREBUILT_TARGETS, prebuiltPackageName } from "./platform.js";
export { createLocalProfile, type LocalProfileOptions } from "./profile.js";
export {
  type ChatMessage,
  type ChatTemplateDescriptor,
  cleanResponse,
  findChatTemplate,
  type InferenceRenderOptions,
  loadTemplate,
  type ModelTemplateFiles,
  modelTemplateFiles,
  PLAIN_TEMPLATE,
  type RenderedExample,
  readModelTemplateFiles,
  renderChat,
  renderExample,
  renderForInference,
  renderLastTurn,
  renderTurns,
  resolveTemplate,
  saveTemplate,
  sharedInstruction,
  stopStrings,
  TEMPLATE_FORMAT_VERSION,
  type TemplateDescriptor,
  type TemplateOption,
  type TemplateSpec,
  type TextTemplateDescriptor,
  TUNEKIT_FILE,
  toPromptTemplate,
} from "./prompt/index.js";
export {
  type BuildSequencesOptions,
  type BuiltSequences,
  buildSequences,
  type ExampleLayout,
  encodePrompt,
  endTokenIds,
  IGNORE_INDEX,
  type InferencePrompt,
  inferencePrompt,
  layoutExample,
  type SequenceTokenizer,
  type SequenceWarning,
  type TokenizedTurns,
  type TrainingSequence,
  type TrainOn,
  type TruncatedExample,
  tokenizerFromModel,
  tokenizeTurns,
} from "./sequences.js";
export { TENSORBOARD_TAGS, tensorBoardReporter } from "./tensorboard-reporter.js";
export {
  type LocalTunedGenerateOptions,
  LocalTunedModel,
  METRICS_FILE,
} from "./tuned-model.js";
export { LOCAL_DEFAULTS, LocalTuner, type LocalTunerOptions } from "./tuner.js";
