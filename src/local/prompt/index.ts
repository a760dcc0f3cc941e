/**
 * Prompt building for local tuning: the model's chat template (rendered with
 * `@huggingface/jinja`), the plain template, or a custom one; stored beside the adapter.
 */
export {
  type ChatMessage,
  type ChatRenderContext,
  type ChatTemplateSource,
  findChatTemplate,
  type ModelTemplateFiles,
  modelTemplateFiles,
  readModelTemplateFiles,
  renderChat,
  specialTokens,
  type TemplateSourceModel,
} from "./chat.js";
export {
  loadTemplate,
  parseTemplateDescriptor,
  saveTemplate,
  TUNEKIT_FILE,
} from "./store.js";
export {
  type ChatTemplateDescriptor,
  cleanResponse,
  type InferenceRenderOptions,
  PLAIN_TEMPLATE,
  type RenderedExample,
  renderExample,
  renderForInference,
  renderLastTurn,
  renderTurns,
  resolveTemplate,
  sharedInstruction,
  stopStrings,
  TEMPLATE_FORMAT_VERSION,
  type TemplateDescriptor,
  type TemplateOption,
  type TemplateSpec,
  type TextTemplateDescriptor,
  toPromptTemplate,
} from "./template.js";
