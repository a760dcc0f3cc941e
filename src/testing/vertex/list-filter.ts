/**
 * @internal The list filters the fake understands, joined by `AND` (or spaces):
 * `labels.KEY="VALUE"`, `state="JOB_STATE_…"`, `base_model="…"` (quotes optional).
 * Anything else → 400.
 */
import { invalid, isRecord } from "../shared/http.js";

export function parseFilter(filter: string): (job: Record<string, unknown>) => boolean {
  const terms = filter
    .split(/\s+AND\s+|\s+/)
    .map((term) => term.trim())
    .filter((term) => term.length > 0 && term !== "AND");
  const tests = terms.map((term) => {
    const match = /^([A-Za-z_][\w.-]*)\s*=\s*"?([^"]*)"?$/.exec(term);
    if (!match) invalid(`Unsupported filter term: ${term}`);
    const [, field, value] = match as unknown as [string, string, string];
    if (field.startsWith("labels.")) {
      const key = field.slice("labels.".length);
      return (job: Record<string, unknown>) =>
        isRecord(job.labels) && (job.labels as Record<string, string>)[key] === value;
    }
    if (field === "state") return (job: Record<string, unknown>) => job.state === value;
    if (field === "base_model" || field === "baseModel")
      return (job: Record<string, unknown>) => job.baseModel === value;
    return invalid(
      `Unsupported filter field: ${field} (the fake supports labels.*, state and base_model)`,
    );
  });
  return (job) => tests.every((test) => test(job));
}
