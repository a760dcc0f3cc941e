/**
 * Evaluation reports for people: the metric table (with a baseline column when comparing a
 * tuned model with its base) and a markdown report with the worst examples.
 */
import type { EvaluationMetrics, EvaluationReport, ExampleResult } from "./evaluate.js";

/** Metrics shown first, in this order; user scorers follow by name. */
const ORDER = ["exactMatch", "normalizedMatch", "contains", "loss", "perplexity"];
/** Lower is better for these; higher for every other metric. */
const LOWER_IS_BETTER = new Set(["loss", "perplexity"]);

/** Every metric name in `reports`, built-ins first. */
export function metricNames(...reports: (EvaluationReport | undefined)[]): string[] {
  const names = new Set<string>();
  for (const report of reports) {
    for (const [name, value] of Object.entries(report?.metrics ?? {})) {
      if (value !== undefined) names.add(name);
    }
  }
  const known = ORDER.filter((n) => names.has(n));
  return [...known, ...[...names].filter((n) => !ORDER.includes(n)).sort()];
}

/** A metric value as shown: scores as percentages, loss and perplexity with 4 significant digits. */
export function formatMetric(name: string, value: number | undefined): string {
  if (value === undefined) return "—";
  if (LOWER_IS_BETTER.has(name)) return value.toPrecision(4);
  return `${(value * 100).toFixed(1)}%`;
}

/**
 * The worst `count` examples: wrong answers first (lowest mean score), then the highest
 * response loss. Ties keep dataset order.
 */
export function worstExamples(report: EvaluationReport, count: number): ExampleResult[] {
  const mean = (r: ExampleResult) => {
    const scores = Object.values(r.scores);
    return scores.length === 0 ? 1 : scores.reduce((a, b) => a + b, 0) / scores.length;
  };
  return [...report.results]
    .sort((a, b) => mean(a) - mean(b) || (b.loss ?? 0) - (a.loss ?? 0) || a.index - b.index)
    .slice(0, Math.max(0, count));
}

/** Rows of `[metric, value…]` for a table of `reports` side by side. */
export function metricRows(
  reports: readonly EvaluationReport[],
  pick: (report: EvaluationReport) => EvaluationMetrics = (r) => r.metrics,
): string[][] {
  return metricNames(...reports).map((name) => [
    name,
    ...reports.map((report) => formatMetric(name, pick(report)[name])),
  ]);
}

/** Plain-text table with aligned columns (the first left-aligned, the rest right-aligned). */
export function textTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? "")].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => {
          const pad = (widths?.[i] ?? 0) - [...cell].length;
          return i === 0 ? cell + " ".repeat(pad) : " ".repeat(pad) + cell;
        })
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** Options of {@link evaluationMarkdown}. */
export interface MarkdownReportOptions {
  /** The report of the model compared against (e.g. the untuned base model). */
  baseline?: EvaluationReport;
  /** How many of the worst examples to list. @default 10 */
  worst?: number;
  /** The data evaluated, named in the heading. */
  dataset?: string;
}

const cell = (text: string | undefined) =>
  (text ?? "").replace(/\|/g, "\\|").replace(/\r?\n/g, "⏎").slice(0, 200) || " ";

/**
 * A markdown report of an evaluation: the metric table (baseline beside it when given), per-slice
 * tables, and the worst examples with their answers.
 *
 * @example
 * ```ts
 * await writeFile("eval.md", evaluationMarkdown(report, { baseline, worst: 5 }));
 * ```
 */
export function evaluationMarkdown(
  report: EvaluationReport,
  options: MarkdownReportOptions = {},
): string {
  const { baseline } = options;
  const reports = baseline ? [baseline, report] : [report];
  const header = baseline
    ? ["metric", `baseline: ${baseline.model}`, report.model]
    : ["metric", report.model];
  const lines: string[] = [`# Evaluation of ${report.model}`, ""];
  lines.push(
    `${report.examples} examples${options.dataset ? ` from ${options.dataset}` : ""}, ` +
      `${(report.durationMs / 1000).toFixed(1)} s.`,
    "",
  );
  // Numbers right-aligned, text (the worst examples) left-aligned.
  const table = (rows: string[][], head: string[], numeric = true) => [
    `| ${head.map(cell).join(" | ")} |`,
    `| ${head.map((_, i) => (i === 0 || !numeric ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ];
  lines.push(...table(metricRows(reports), header), "");
  if (report.slices) {
    lines.push("## Slices", "");
    const names = metricNames(report);
    const head = ["slice", "examples", ...names];
    const rows = Object.entries(report.slices).map(([key, slice]) => {
      const base = baseline?.slices?.[key];
      return [
        key,
        String(slice.examples),
        ...names.map((n) => {
          const now = formatMetric(n, slice.metrics[n]);
          return base ? `${formatMetric(n, base.metrics[n])} → ${now}` : now;
        }),
      ];
    });
    lines.push(...table(rows, head), "");
  }
  const worst = worstExamples(report, options.worst ?? 10);
  if (worst.length > 0) {
    lines.push(`## Worst ${worst.length} examples`, "");
    const hasLoss = worst.some((r) => r.loss !== undefined);
    const hasGroup = worst.some((r) => r.group !== undefined);
    const head = [
      "#",
      ...(hasGroup ? ["slice"] : []),
      "input",
      "expected",
      "answer",
      ...(baseline ? ["baseline answer"] : []),
      ...(hasLoss ? ["loss"] : []),
    ];
    const rows = worst.map((r) => {
      const where = r.position ? `${r.position.kind} ${r.position.value}` : String(r.index);
      const before = baseline?.results[r.index];
      return [
        where,
        ...(hasGroup ? [r.group ?? ""] : []),
        r.input,
        r.expected,
        r.output ?? "",
        ...(baseline ? [before?.output ?? ""] : []),
        ...(hasLoss ? [r.loss === undefined ? "—" : r.loss.toFixed(3)] : []),
      ];
    });
    lines.push(...table(rows, head, false), "");
  }
  return `${lines.join("\n")}`;
}
