import type { DatasetIssue } from "../errors.js";
import { InvalidDatasetError } from "../errors.js";
import type { Example } from "./example.js";
import { IssueCollector, type PositionTable, positionAt } from "./issues.js";
import type { LimitProfile } from "./profiles.js";

/** What `dataset.validate(profile)` found. */
export interface ValidationResult {
  /** The profile that was applied. */
  profile: string;
  /** True when there is no error-severity issue (warnings may remain). */
  valid: boolean;
  /** Every issue found, errors and warnings, in the order found. */
  issues: readonly DatasetIssue[];
  errors: readonly DatasetIssue[];
  warnings: readonly DatasetIssue[];
  /** True when more example problems existed than `maxIssues` allowed. */
  truncated: boolean;
}

/** Runs `profile` over `examples`, positioning every example problem in its source. */
export function runProfile(
  examples: readonly Example[],
  positions: PositionTable,
  profile: LimitProfile,
  maxIssues: number,
): ValidationResult {
  const collector = new IssueCollector(maxIssues);
  profile.validate(examples, {
    get full() {
      return collector.truncated;
    },
    example(index, field, reason, severity = "error") {
      collector.record(positionAt(positions, index), field, reason, severity);
    },
    dataset(reason, severity = "error") {
      collector.dataset(reason, severity);
    },
  });
  const issues = collector.finish();
  const errors = issues.filter((issue) => issue.severity === "error");
  return {
    profile: profile.name,
    valid: errors.length === 0,
    issues,
    errors,
    warnings: issues.filter((issue) => issue.severity === "warning"),
    truncated: collector.truncated,
  };
}

/** Throws `InvalidDatasetError` (with every issue) unless `result` is valid. */
export function assertValid(result: ValidationResult, source: string): void {
  if (result.valid) return;
  throw new InvalidDatasetError(result.issues, { source, truncated: result.truncated });
}
