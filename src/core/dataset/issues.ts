import type { DatasetIssue, DatasetPosition } from "../errors.js";
import { InvalidDatasetError, InvalidOptionError } from "../errors.js";
import type { PositionKind } from "./example.js";

/**
 * Collects problems up to a cap. Problems about one record carry its position; problems
 * about the whole dataset (too few examples, payload size) never count against the cap,
 * so they are always reported.
 */
export class IssueCollector {
  readonly issues: DatasetIssue[] = [];
  /** True once a record-level problem was dropped because the cap was reached. */
  truncated = false;
  private recordIssues = 0;
  private readonly maxIssues: number;

  constructor(maxIssues: number) {
    this.maxIssues = maxIssues;
  }

  /** True when no more record-level problems will be kept; loops may stop early. */
  get full(): boolean {
    return this.recordIssues >= this.maxIssues;
  }

  get errorCount(): number {
    let count = 0;
    for (const issue of this.issues) if (issue.severity === "error") count++;
    return count;
  }

  /** Adds a problem about one record. Returns false (and marks truncation) once the cap is reached. */
  record(
    position: DatasetPosition,
    field: string | undefined,
    reason: string,
    severity: DatasetIssue["severity"] = "error",
  ): boolean {
    if (this.full) {
      this.truncated = true;
      return false;
    }
    this.recordIssues++;
    const issue: DatasetIssue = { position, reason, severity };
    if (field !== undefined) issue.field = field;
    this.issues.push(issue);
    return true;
  }

  /** Adds a problem about the whole dataset (never capped). */
  dataset(reason: string, severity: DatasetIssue["severity"] = "error"): void {
    this.issues.push({ reason, severity });
  }

  /** The issues, ending with a warning that says the list was cut when it was. */
  finish(): DatasetIssue[] {
    if (!this.truncated) return this.issues;
    return [
      ...this.issues,
      {
        reason: `more problems were found but not listed: the list stops at maxIssues (${this.maxIssues})`,
        severity: "warning",
      },
    ];
  }

  /** Throws `InvalidDatasetError` with every collected issue when any of them is an error. */
  throwIfErrors(source: string): void {
    if (this.errorCount === 0) return;
    throw new InvalidDatasetError(this.finish(), { source, truncated: this.truncated });
  }
}

/** Reads and checks `maxIssues`. */
export function resolveMaxIssues(value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidOptionError("maxIssues", `maxIssues must be a positive integer, got ${value}`);
  }
  return value;
}

/** Maps example indexes to their positions in the source. */
export interface PositionTable {
  readonly kind: PositionKind;
  /** `values[i]` is the line, row or index of example `i`. */
  readonly values: ArrayLike<number>;
}

export function positionAt(table: PositionTable, index: number): DatasetPosition {
  return { kind: table.kind, value: table.values[index] ?? index };
}
