import type { ColumnMapping, DatasetShape, Example, PositionKind } from "./example.js";
import type { IssueCollector } from "./issues.js";
import {
  detectShape,
  normalizeRecord,
  type PlainRecord,
  type RecordSink,
  SHAPE_LABELS,
  unknownShapeReason,
} from "./shapes.js";
import { describeType } from "./text.js";

/** What a loader hands to `Dataset`: valid examples, where each came from, and the shape. */
export interface NormalizedRecords {
  examples: Example[];
  positions: number[];
  kind: PositionKind;
  shape: DatasetShape | undefined;
  /** `fields[i]`: the scalar top-level fields of example `i`'s record (see `scalarFields`). */
  fields: RecordFields[];
}

/** A record's top-level string, number and boolean fields (e.g. a `kind` to group results by). */
export type RecordFields = Readonly<Record<string, string | number | boolean>>;

const NO_FIELDS: RecordFields = Object.freeze({});

/**
 * The scalar fields of `record`. Values are the parsed strings themselves (shared, not
 * copied), so keeping them costs one small object per example.
 */
export function scalarFields(record: PlainRecord): RecordFields {
  let fields: Record<string, string | number | boolean> | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      fields ??= {};
      fields[key] = value;
    }
  }
  return fields ?? NO_FIELDS;
}

/**
 * Turns raw records into examples one at a time, so loaders can stream. Every record of
 * one dataset must have the same shape; the first record of each new shape is named in
 * a "mixed shapes" problem and records of that shape are skipped.
 */
export class RecordNormalizer implements RecordSink {
  readonly examples: Example[] = [];
  readonly positions: number[] = [];
  readonly fields: RecordFields[] = [];
  private shape: DatasetShape | undefined;
  private readonly firstOfShape = new Map<DatasetShape, number>();
  private current = 0;

  constructor(
    private readonly kind: PositionKind,
    private readonly columns: ColumnMapping | undefined,
    private readonly issues: IssueCollector,
  ) {}

  /** Records a problem for the record being normalised (part of `RecordSink`). */
  report(field: string | undefined, reason: string): void {
    this.issues.record({ kind: this.kind, value: this.current }, field, reason);
  }

  /** Normalises `record`, found at `position` (line, row or index). */
  add(record: unknown, position: number): void {
    this.current = position;
    if (typeof record !== "object" || record === null || Array.isArray(record)) {
      this.report(undefined, `expected an object, got ${describeType(record)}`);
      return;
    }
    const plain = record as PlainRecord;
    const shape = this.columns !== undefined ? "columns" : detectShape(plain);
    if (shape === undefined) {
      this.report(undefined, unknownShapeReason(plain));
      return;
    }
    if (shape !== this.shape) {
      if (this.shape === undefined) {
        this.shape = shape;
        this.firstOfShape.set(shape, position);
      } else {
        if (!this.firstOfShape.has(shape)) {
          this.firstOfShape.set(shape, position);
          const first = this.firstOfShape.get(this.shape);
          this.report(
            undefined,
            `mixed shapes: ${this.kind} ${first} is ${SHAPE_LABELS[this.shape]} but ${this.kind} ` +
              `${position} is ${SHAPE_LABELS[shape]}; every record must have the same shape`,
          );
        }
        return;
      }
    }
    const example = normalizeRecord(plain, shape, this.columns, this);
    if (example !== undefined) {
      this.examples.push(example);
      this.positions.push(position);
      this.fields.push(scalarFields(plain));
    }
  }

  result(): NormalizedRecords {
    return {
      examples: this.examples,
      positions: this.positions,
      kind: this.kind,
      shape: this.shape,
      fields: this.fields,
    };
  }
}
