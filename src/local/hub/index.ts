/**
 * Base-model resolution for the local backend: model directories, GGUF files and hub ids
 * downloaded into the shared Hugging Face cache (Python's layout). No native code here.
 */
export {
  DEFAULT_HUB_ENDPOINT,
  type HubEnv,
  hfHome,
  hubCacheDir,
  hubEndpoint,
  hubToken,
  isOffline,
  normalizeEtag,
  repoFolderName,
} from "./cache.js";
export type { ModelDownloadEvent } from "./download.js";
export {
  checkModelDirectory,
  MODEL_METADATA_FILES,
  type ModelDirectoryCheck,
  SAFETENSORS_INDEX,
} from "./files.js";
export {
  type ModelSpec,
  parseModelSpec,
  type ResolvedModel,
  type ResolveModelOptions,
  resolveModel,
} from "./resolve.js";
