export {
  type EvaluateOptions,
  type EvaluationMetrics,
  type EvaluationProgress,
  type EvaluationReport,
  type EvaluationSlice,
  type ExampleResult,
  evaluate,
  hasResponseLoss,
  type ResponseLoss,
  type ResponseLossModel,
  type ResponseLossOptions,
  type Scorer,
  type ScorerInput,
} from "./evaluate.js";
export {
  contains,
  exactMatch,
  GENERATION_METRICS,
  type GenerationMetric,
  normalizeAnswer,
  normalizedMatch,
} from "./metrics.js";
export {
  evaluationMarkdown,
  formatMetric,
  type MarkdownReportOptions,
  metricNames,
  metricRows,
  textTable,
  worstExamples,
} from "./report.js";
