/**
 * A small validator of JSON values against Google API discovery-document schemas
 * (the `schemas` section of e.g. `generativelanguage-v1beta.discovery.json`).
 *
 * It checks what proto3 JSON cares about: types, `$ref`, `items`, `enum`, formats
 * (`int32`/`uint32` are JSON integers, `int64`/`uint64` are decimal strings, timestamps are
 * RFC 3339, durations end in `s`, `byte` is base64), `additionalProperties` maps, and —
 * most important for catching typos — fields the schema does not know.
 */
import { BUNDLED_SCHEMAS } from "../gemini/schemas.js";

/** One schema in a discovery document (the subset of keys that matter for validation). */
export interface DiscoverySchema {
  id?: string;
  type?: string;
  format?: string;
  $ref?: string;
  properties?: Record<string, DiscoverySchema>;
  items?: DiscoverySchema;
  additionalProperties?: DiscoverySchema;
  enum?: string[];
  enumDeprecated?: boolean[];
  readOnly?: boolean;
  deprecated?: boolean;
}

/** A discovery document's `schemas` section: schema name → schema. */
export type DiscoverySchemas = Record<string, DiscoverySchema>;

/** Why a value failed validation. */
export type SchemaIssueCode =
  | "unknown_field"
  | "wrong_type"
  | "bad_enum"
  | "bad_format"
  | "read_only"
  | "unknown_schema";

/** One problem found by {@link validateAgainstSchema}. */
export interface SchemaIssue {
  /** Where, as a JSON path from the root: `$.tuningTask.trainingData.examples.examples[3]`. */
  path: string;
  code: SchemaIssueCode;
  message: string;
}

/** The outcome of {@link validateAgainstSchema}. */
export interface SchemaValidationResult {
  valid: boolean;
  issues: SchemaIssue[];
}

/** Options of {@link validateAgainstSchema}. */
export interface ValidateOptions {
  /**
   * The schemas to resolve names and `$ref`s in.
   * @default the discovery subset bundled with tunekit/testing plus `CreateTunedModelMetadata`
   */
  schemas?: DiscoverySchemas;
  /**
   * Report fields marked output-only (`readOnly`) as issues. Turn on to check a request body
   * a client sends, where output-only fields are pointless (the server ignores them).
   * @default false
   */
  rejectReadOnly?: boolean;
  /**
   * Inside `additionalProperties: {type: "any"}` maps (e.g. `Operation.metadata`), validate an
   * object carrying `"@type": "type.googleapis.com/….Name"` against schema `Name` when known.
   * @default true
   */
  resolveTypeUrls?: boolean;
}

/** Thrown by {@link assertValidAgainstSchema}. */
export class SchemaValidationError extends Error {
  readonly schemaName: string;
  readonly issues: SchemaIssue[];

  constructor(schemaName: string, issues: SchemaIssue[]) {
    super(
      `Value does not match discovery schema ${schemaName}:\n${issues
        .map((issue) => `  ${issue.path}: ${issue.message}`)
        .join("\n")}`,
    );
    this.name = "SchemaValidationError";
    this.schemaName = schemaName;
    this.issues = issues;
  }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const DURATION = /^-?\d+(\.\d{1,9})?s$/;
const INT64 = /^-?\d+$/;
const UINT64 = /^\d+$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const SPECIAL_FLOATS = new Set(["NaN", "Infinity", "-Infinity"]);
const TYPE_URL_PREFIX = "type.googleapis.com/";

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function childPath(path: string, key: string): string {
  return /^[A-Za-z_@$][\w@$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

class Validator {
  readonly issues: SchemaIssue[] = [];

  constructor(
    private readonly schemas: DiscoverySchemas,
    private readonly rejectReadOnly: boolean,
    private readonly resolveTypeUrls: boolean,
  ) {}

  private add(path: string, code: SchemaIssueCode, message: string): void {
    this.issues.push({ path, code, message });
  }

  named(value: unknown, name: string, path: string): void {
    const schema = this.schemas[name];
    if (schema === undefined) {
      this.add(path, "unknown_schema", `schema "${name}" is not known`);
      return;
    }
    this.check(value, schema, path);
  }

  check(value: unknown, schema: DiscoverySchema, path: string): void {
    if (schema.$ref !== undefined) {
      this.named(value, schema.$ref, path);
      return;
    }
    switch (schema.type) {
      case "any":
      case undefined:
        return;
      case "object":
        this.object(value, schema, path);
        return;
      case "array":
        if (!Array.isArray(value)) {
          this.add(path, "wrong_type", `expected an array, got ${describe(value)}`);
          return;
        }
        if (schema.items !== undefined) {
          value.forEach((item, index) => {
            this.check(item, schema.items!, `${path}[${index}]`);
          });
        }
        return;
      case "string":
        this.string(value, schema, path);
        return;
      case "integer":
        this.integer(value, schema, path);
        return;
      case "number":
        if (typeof value === "number" && Number.isFinite(value)) return;
        if (typeof value === "string" && SPECIAL_FLOATS.has(value)) return;
        this.add(path, "wrong_type", `expected a number, got ${describe(value)}`);
        return;
      case "boolean":
        if (typeof value !== "boolean") {
          this.add(path, "wrong_type", `expected a boolean, got ${describe(value)}`);
        }
        return;
      default:
        return;
    }
  }

  private object(value: unknown, schema: DiscoverySchema, path: string): void {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      this.add(path, "wrong_type", `expected an object, got ${describe(value)}`);
      return;
    }
    const record = value as Record<string, unknown>;
    const properties = schema.properties ?? {};
    const extra = schema.additionalProperties;
    if (
      extra !== undefined &&
      extra.type === "any" &&
      this.resolveTypeUrls &&
      typeof record["@type"] === "string" &&
      record["@type"].startsWith(TYPE_URL_PREFIX)
    ) {
      const typeName = record["@type"].split(".").pop() ?? "";
      if (this.schemas[typeName] !== undefined) {
        const { "@type": _ignored, ...rest } = record;
        this.named(rest, typeName, path);
        return;
      }
    }
    for (const [key, inner] of Object.entries(record)) {
      const property = properties[key];
      const innerPath = childPath(path, key);
      if (property !== undefined) {
        if (this.rejectReadOnly && property.readOnly === true) {
          this.add(innerPath, "read_only", `"${key}" is output only`);
        }
        this.check(inner, property, innerPath);
      } else if (extra !== undefined) {
        this.check(inner, extra, innerPath);
      } else {
        this.add(innerPath, "unknown_field", `unknown field "${key}"`);
      }
    }
  }

  private string(value: unknown, schema: DiscoverySchema, path: string): void {
    if (typeof value !== "string") {
      const what =
        schema.format === "int64" || schema.format === "uint64"
          ? " (int64 travels as a string)"
          : "";
      this.add(path, "wrong_type", `expected a string${what}, got ${describe(value)}`);
      return;
    }
    if (schema.enum !== undefined && !schema.enum.includes(value)) {
      this.add(path, "bad_enum", `"${value}" is not one of ${schema.enum.join(", ")}`);
      return;
    }
    const format = schema.format;
    const bad = (expected: string) =>
      this.add(path, "bad_format", `"${value}" is not ${expected} (format ${format})`);
    if (format === "int64" && !INT64.test(value)) bad("a decimal integer");
    else if (format === "uint64" && !UINT64.test(value)) bad("an unsigned decimal integer");
    else if (format === "google-datetime" && !RFC3339.test(value)) bad("an RFC 3339 timestamp");
    else if (format === "google-duration" && !DURATION.test(value)) bad('a duration like "3.5s"');
    else if (format === "byte" && !BASE64.test(value)) bad("base64");
  }

  private integer(value: unknown, schema: DiscoverySchema, path: string): void {
    if (typeof value !== "number" || !Number.isInteger(value)) {
      this.add(path, "wrong_type", `expected an integer, got ${describe(value)}`);
      return;
    }
    if (schema.format === "int32" && (value < -2_147_483_648 || value > 2_147_483_647)) {
      this.add(path, "bad_format", `${value} does not fit in int32`);
    } else if (schema.format === "uint32" && (value < 0 || value > 4_294_967_295)) {
      this.add(path, "bad_format", `${value} does not fit in uint32`);
    }
  }
}

/**
 * Validate a JSON value against a named discovery schema.
 *
 * @example
 * ```ts
 * const result = validateAgainstSchema(body, "TunedModel", { rejectReadOnly: true });
 * if (!result.valid) console.error(result.issues);
 * ```
 */
export function validateAgainstSchema(
  value: unknown,
  schemaName: string,
  options: ValidateOptions = {},
): SchemaValidationResult {
  const validator = new Validator(
    options.schemas ?? BUNDLED_SCHEMAS,
    options.rejectReadOnly ?? false,
    options.resolveTypeUrls ?? true,
  );
  validator.named(value, schemaName, "$");
  return { valid: validator.issues.length === 0, issues: validator.issues };
}

/** Like {@link validateAgainstSchema}, but throws a {@link SchemaValidationError} listing every issue. */
export function assertValidAgainstSchema(
  value: unknown,
  schemaName: string,
  options: ValidateOptions = {},
): void {
  const result = validateAgainstSchema(value, schemaName, options);
  if (!result.valid) throw new SchemaValidationError(schemaName, result.issues);
}
