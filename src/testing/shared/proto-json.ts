/**
 * The proto3 JSON mapping, as Google's REST front ends apply it, driven by discovery-document
 * schemas: how the fakes read request bodies and query parameters and write replies.
 *
 * Reading accepts every form a proto3 JSON parser accepts and normalises it:
 * - field names in lowerCamelCase (the JSON name) or as the proto field name (snake_case);
 * - enums by name or by number (gapic REST clients send numbers);
 * - 64-bit integers as decimal strings or JSON numbers, 32-bit integers as numbers or strings;
 * - floats as numbers or numeric strings, and `"NaN"`, `"Infinity"`, `"-Infinity"`;
 * - `google.protobuf.Timestamp` (RFC 3339), `Duration` (`"1.5s"`), `FieldMask`
 *   (`"a.b,c"`, paths in either spelling) and `bytes` (base64, standard or URL-safe);
 * - `null` for any field as "not set".
 * Fields the schema does not know are rejected with Google's wording
 * (`Invalid JSON payload received. Unknown name "x" at 'tuned_model': Cannot find field.`), as
 * are values of the wrong type (`Invalid value at 'tuned_model.temperature' (TYPE_FLOAT), "hot"`).
 *
 * The canonical form handlers work with (and replies are written in): lowerCamelCase names,
 * enum names, 64-bit integers as strings, everything else as JSON numbers, booleans and
 * strings. Replies carry enum numbers instead of names when the client asked for
 * `$alt=json;enum-encoding=int`.
 */
import type { DiscoverySchema, DiscoverySchemas } from "./schema-validator.js";

/** Proto enum numbers: schema → property → the proto enum type and its value numbers. */
export type EnumNumbers = Record<
  string,
  Record<string, { type: string; values: Record<string, number> }>
>;

/** One problem found while reading a value. */
export interface ProtoJsonIssue {
  /** JSON path from the root: `$.tuningTask.hyperparameters.epochCount`. */
  path: string;
  /** The proto field path Google names in errors: `tuned_model.tuning_task.hyperparameters.epoch_count`. */
  field: string;
  code: "unknown_field" | "wrong_type" | "bad_enum" | "bad_format" | "duplicate_field";
  /** Google's wording, e.g. `Invalid value at 'x' (TYPE_INT32), "abc"`. */
  description: string;
}

/** Options of {@link ProtoJsonCodec}. */
export interface ProtoJsonCodecOptions {
  schemas: DiscoverySchemas;
  enums: EnumNumbers;
  /** The proto message name of a schema (`TuningTask` → `google.ai.generativelanguage.v1beta.TuningTask`). */
  messageType: (schemaName: string) => string;
}

/** A query parameter's type, as its discovery method definition gives it. */
export interface QueryParameter {
  type: "string" | "integer" | "boolean" | "number";
  format?: string;
  repeated?: boolean;
}

const INT_STRING = /^-?\d+$/;
const UINT_STRING = /^\d+$/;
const FLOAT_STRING = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;
const DURATION = /^(-)?(\d+)(\.\d{1,9})?s$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const MAX_DURATION_SECONDS = 315_576_000_000;
const SPECIAL_FLOATS: Record<string, number> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  "-Infinity": Number.NEGATIVE_INFINITY,
};

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (isObject(value) || Array.isArray(value)) return JSON.stringify(value).slice(0, 200);
  return String(value);
}

function jsonChild(path: string, key: string): string {
  return /^[A-Za-z_@$][\w@$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function protoChild(field: string, name: string): string {
  return field === "" ? name : `${field}.${name}`;
}

/** `int32` → `TYPE_INT32` etc.: the scalar type names Google's errors use. */
function scalarTypeName(schema: DiscoverySchema): string {
  switch (schema.format) {
    case "int32":
      return "TYPE_INT32";
    case "uint32":
      return "TYPE_UINT32";
    case "int64":
      return "TYPE_INT64";
    case "uint64":
      return "TYPE_UINT64";
    case "float":
      return "TYPE_FLOAT";
    case "double":
      return "TYPE_DOUBLE";
    case "byte":
      return "TYPE_BYTES";
    default:
      return schema.type === "boolean" ? "TYPE_BOOL" : "TYPE_STRING";
  }
}

/**
 * Reads and writes proto3 JSON for the messages of one API (its discovery schemas and proto
 * enum numbers).
 */
export class ProtoJsonCodec {
  readonly #schemas: DiscoverySchemas;
  readonly #enums: EnumNumbers;
  readonly #messageType: (schemaName: string) => string;

  constructor(options: ProtoJsonCodecOptions) {
    this.#schemas = options.schemas;
    this.#enums = options.enums;
    this.#messageType = options.messageType;
  }

  /**
   * Reads `value` as the message `schemaName`. `root` is the proto name of the body in Google's
   * error paths (`tuned_model` for a create whose body is the `tuned_model` field; `""` when
   * the body is the whole request message).
   */
  decode(
    value: unknown,
    schemaName: string,
    root = "",
  ): { value: Record<string, unknown>; issues: ProtoJsonIssue[] } {
    const issues: ProtoJsonIssue[] = [];
    const reader = new Reader(this, issues);
    const decoded = reader.message(value ?? {}, schemaName, "$", root);
    return { value: isObject(decoded) ? decoded : {}, issues };
  }

  /**
   * Writes canonical `value` (message `schemaName`) for the wire: `"int"` turns enum names into
   * their numbers; special floats become `"NaN"`/`"Infinity"`/`"-Infinity"`.
   */
  encode(value: unknown, schemaName: string, enums: "name" | "int" = "name"): unknown {
    return this.#write(value, { $ref: schemaName }, undefined, enums);
  }

  /** The number of enum value `name` of `schema.property`, when known. */
  enumNumber(schemaName: string, property: string, name: string): number | undefined {
    return this.#enums[schemaName]?.[property]?.values[name];
  }

  /** The name of enum number `number` of `schema.property`, when known. */
  enumName(schemaName: string, property: string, number: number): string | undefined {
    const values = this.#enums[schemaName]?.[property]?.values ?? {};
    return Object.keys(values).find((name) => values[name] === number);
  }

  /** The proto enum type of `schema.property` (`google.ai.generativelanguage.v1beta.HarmCategory`). */
  enumType(schemaName: string, property: string): string | undefined {
    return this.#enums[schemaName]?.[property]?.type;
  }

  /** @internal */
  schema(name: string): DiscoverySchema | undefined {
    return this.#schemas[name];
  }

  /** @internal */
  messageType(name: string): string {
    return this.#messageType(name);
  }

  /**
   * Reads query parameters against their declared types: unknown parameters (other than
   * Google's system parameters) and values of the wrong type are issues.
   */
  decodeQuery(
    query: URLSearchParams,
    parameters: Record<string, QueryParameter>,
  ): { values: Record<string, unknown>; issues: ProtoJsonIssue[] } {
    const issues: ProtoJsonIssue[] = [];
    const values: Record<string, unknown> = {};
    const known = new Map<string, [string, QueryParameter]>();
    for (const [name, parameter] of Object.entries(parameters)) {
      known.set(name, [name, parameter]);
      known.set(snakeCase(name), [name, parameter]);
    }
    const reader = new Reader(this, issues);
    for (const key of new Set(query.keys())) {
      if (SYSTEM_PARAMETERS.has(key)) continue;
      const found = known.get(key);
      if (found === undefined) {
        issues.push({
          path: key,
          field: key,
          code: "unknown_field",
          description: `Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter. Field '${key}' could not be found in request message.`,
        });
        continue;
      }
      const [name, parameter] = found;
      const raw = query.getAll(key);
      const read = (text: string) =>
        reader.scalar(
          parameter.type === "string" ? text : queryValue(text, parameter),
          { type: parameter.type, ...(parameter.format ? { format: parameter.format } : {}) },
          key,
          snakeCase(name),
          undefined,
        );
      values[name] = parameter.repeated ? raw.map(read) : read(raw.at(-1) as string);
    }
    return { values, issues };
  }

  #write(
    value: unknown,
    schema: DiscoverySchema,
    owner: { schema: string; property: string } | undefined,
    enums: "name" | "int",
  ): unknown {
    if (value === undefined || value === null) return value;
    if (schema.$ref !== undefined) {
      const target = this.#schemas[schema.$ref];
      if (target === undefined) return value;
      return this.#writeNamed(value, target, schema.$ref, owner, enums);
    }
    return this.#writeNamed(value, schema, undefined, owner, enums);
  }

  #writeNamed(
    value: unknown,
    schema: DiscoverySchema,
    name: string | undefined,
    owner: { schema: string; property: string } | undefined,
    enums: "name" | "int",
  ): unknown {
    switch (schema.type) {
      case "object": {
        if (!isObject(value)) return value;
        const out: Record<string, unknown> = {};
        for (const [key, inner] of Object.entries(value)) {
          const property = schema.properties?.[key];
          if (property !== undefined && name !== undefined) {
            out[key] = this.#write(inner, property, { schema: name, property: key }, enums);
          } else if (schema.additionalProperties !== undefined && property === undefined) {
            out[key] = this.#write(inner, schema.additionalProperties, owner, enums);
          } else {
            out[key] = property === undefined ? inner : this.#write(inner, property, owner, enums);
          }
        }
        return out;
      }
      case "array":
        return Array.isArray(value) && schema.items !== undefined
          ? value.map((item) => this.#write(item, schema.items as DiscoverySchema, owner, enums))
          : value;
      case "string":
        if (schema.enum !== undefined && enums === "int" && typeof value === "string" && owner) {
          return this.enumNumber(owner.schema, owner.property, value) ?? value;
        }
        return value;
      case "number":
        if (typeof value === "number" && !Number.isFinite(value)) {
          return Number.isNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
        }
        return value;
      default:
        return value;
    }
  }
}

/** Query parameters every Google API accepts (discovery `parameters`), plus `$alt`. */
const SYSTEM_PARAMETERS = new Set([
  "$.xgafv",
  "$alt",
  "access_token",
  "alt",
  "callback",
  "fields",
  "key",
  "oauth_token",
  "prettyPrint",
  "quotaUser",
  "uploadType",
  "upload_protocol",
]);

/** A query value as the JSON value it stands for (numbers and booleans travel as text). */
function queryValue(text: string, parameter: QueryParameter): unknown {
  if (parameter.type === "boolean") return text === "true" ? true : text === "false" ? false : text;
  return text;
}

/** Walks one value against its schema, collecting issues. */
class Reader {
  constructor(
    private readonly codec: ProtoJsonCodec,
    private readonly issues: ProtoJsonIssue[],
  ) {}

  #issue(
    path: string,
    field: string,
    code: ProtoJsonIssue["code"],
    description: string,
  ): undefined {
    this.issues.push({ path, field, code, description });
    return undefined;
  }

  message(value: unknown, schemaName: string, path: string, field: string): unknown {
    const schema = this.codec.schema(schemaName);
    if (schema === undefined) return value;
    if (schema.type !== "object") {
      return this.value(value, schema, path, field, { schema: schemaName, property: "" });
    }
    if (!isObject(value)) {
      return this.#issue(
        path,
        field,
        "wrong_type",
        `Invalid value at '${field}' (type.googleapis.com/${this.codec.messageType(schemaName)}), ${shown(value)}`,
      );
    }
    const properties = schema.properties ?? {};
    if (schema.additionalProperties !== undefined && Object.keys(properties).length === 0) {
      // A map (or Struct): keys are data; values follow the value schema.
      return this.#map(value, schema.additionalProperties, path, field);
    }
    const out: Record<string, unknown> = {};
    const seen = new Map<string, string>();
    for (const [key, inner] of Object.entries(value)) {
      const name = key in properties ? key : camelCase(key);
      const property = properties[name];
      const innerPath = jsonChild(path, key);
      if (property === undefined) {
        if (key === "@type" && schema.additionalProperties !== undefined) {
          out[key] = inner;
          continue;
        }
        if (schema.additionalProperties !== undefined) {
          out[key] = this.value(
            inner,
            schema.additionalProperties,
            innerPath,
            protoChild(field, key),
            undefined,
          );
          continue;
        }
        this.#issue(
          innerPath,
          field,
          "unknown_field",
          field === ""
            ? `Invalid JSON payload received. Unknown name "${key}": Cannot find field.`
            : `Invalid JSON payload received. Unknown name "${key}" at '${field}': Cannot find field.`,
        );
        continue;
      }
      const previous = seen.get(name);
      if (previous !== undefined) {
        this.#issue(
          innerPath,
          protoChild(field, snakeCase(name)),
          "duplicate_field",
          `Invalid JSON payload received. Duplicate field "${snakeCase(name)}" (also given as "${previous}").`,
        );
        continue;
      }
      seen.set(name, key);
      if (inner === null && property.type !== "any") continue; // null = not set
      const decoded = this.value(inner, property, innerPath, protoChild(field, snakeCase(name)), {
        schema: schemaName,
        property: name,
      });
      if (decoded !== undefined) out[name] = decoded;
    }
    return out;
  }

  /** A map's entries: keys kept as they are, values read with `valueSchema`. */
  #map(
    value: Record<string, unknown>,
    valueSchema: DiscoverySchema,
    path: string,
    field: string,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      out[key] = this.value(
        inner,
        valueSchema,
        jsonChild(path, key),
        `${field}[${JSON.stringify(key)}]`,
        undefined,
      );
    }
    return out;
  }

  value(
    value: unknown,
    schema: DiscoverySchema,
    path: string,
    field: string,
    owner: { schema: string; property: string } | undefined,
  ): unknown {
    if (schema.$ref !== undefined) return this.message(value, schema.$ref, path, field);
    switch (schema.type) {
      case "any":
      case undefined:
        return value;
      case "object":
        if (!isObject(value)) {
          return this.#issue(
            path,
            field,
            "wrong_type",
            `Invalid value at '${field}' (TYPE_MESSAGE), ${shown(value)}`,
          );
        }
        if (schema.additionalProperties !== undefined) {
          return this.#map(value, schema.additionalProperties, path, field);
        }
        return value;
      case "array": {
        if (!Array.isArray(value)) {
          const what = schema.items?.$ref
            ? `type.googleapis.com/${this.codec.messageType(schema.items.$ref)}`
            : scalarTypeName(schema.items ?? {});
          return this.#issue(
            path,
            field,
            "wrong_type",
            `Invalid value at '${field}' (${what}), ${shown(value)}`,
          );
        }
        const items = schema.items ?? {};
        const out: unknown[] = [];
        value.forEach((item, index) => {
          const decoded = this.value(item, items, `${path}[${index}]`, `${field}[${index}]`, owner);
          if (decoded !== undefined) out.push(decoded);
        });
        return out;
      }
      default:
        return this.scalar(value, schema, path, field, owner);
    }
  }

  scalar(
    value: unknown,
    schema: DiscoverySchema,
    path: string,
    field: string,
    owner: { schema: string; property: string } | undefined,
  ): unknown {
    const wrong = (what = scalarTypeName(schema)) =>
      this.#issue(
        path,
        field,
        "wrong_type",
        `Invalid value at '${field}' (${what}), ${shown(value)}`,
      );
    if (schema.enum !== undefined) {
      const type = owner ? this.codec.enumType(owner.schema, owner.property) : undefined;
      const typeName = `type.googleapis.com/${type ?? "enum"}`;
      if (typeof value === "string") {
        return schema.enum.includes(value)
          ? value
          : this.#issue(
              path,
              field,
              "bad_enum",
              `Invalid value at '${field}' (${typeName}), ${shown(value)}`,
            );
      }
      if (typeof value === "number" && Number.isInteger(value) && owner) {
        const name = this.codec.enumName(owner.schema, owner.property, value);
        if (name !== undefined) return name;
      }
      return this.#issue(
        path,
        field,
        "bad_enum",
        `Invalid value at '${field}' (${typeName}), ${shown(value)}`,
      );
    }
    switch (schema.type) {
      case "boolean":
        if (typeof value === "boolean") return value;
        if (value === "true" || value === "false") return value === "true";
        return wrong();
      case "integer": {
        const number =
          typeof value === "string" && INT_STRING.test(value.trim()) ? Number(value) : value;
        if (typeof number !== "number" || !Number.isInteger(number)) return wrong();
        const [min, max] =
          schema.format === "uint32" ? [0, 4_294_967_295] : [-2_147_483_648, 2_147_483_647];
        return number < min || number > max ? wrong() : number;
      }
      case "number": {
        if (typeof value === "number") return value;
        if (typeof value === "string") {
          if (value in SPECIAL_FLOATS) return SPECIAL_FLOATS[value];
          if (FLOAT_STRING.test(value.trim())) return Number(value);
        }
        return wrong();
      }
      case "string":
        return this.#string(value, schema, path, field, wrong);
      default:
        return value;
    }
  }

  #string(
    value: unknown,
    schema: DiscoverySchema,
    path: string,
    field: string,
    wrong: (what?: string) => undefined,
  ): unknown {
    const format = schema.format;
    if (format === "int64" || format === "uint64") {
      const pattern = format === "uint64" ? UINT_STRING : INT_STRING;
      if (
        typeof value === "number" &&
        Number.isInteger(value) &&
        (format === "int64" || value >= 0)
      )
        return BigInt(value).toString();
      if (typeof value === "string" && pattern.test(value.trim()))
        return BigInt(value.trim()).toString();
      return wrong();
    }
    if (typeof value !== "string") {
      if (format === "google-datetime")
        return wrong("type.googleapis.com/google.protobuf.Timestamp");
      if (format === "google-duration")
        return wrong("type.googleapis.com/google.protobuf.Duration");
      if (format === "google-fieldmask")
        return wrong("type.googleapis.com/google.protobuf.FieldMask");
      return wrong();
    }
    const badFormat = (type: string, why: string) =>
      this.#issue(
        path,
        field,
        "bad_format",
        `Invalid value at '${field}' (type.googleapis.com/${type}), Field '${field}', ${why}`,
      );
    switch (format) {
      case "google-datetime": {
        const match = RFC3339.exec(value);
        if (!match || Number.isNaN(Date.parse(value))) {
          return badFormat(
            "google.protobuf.Timestamp",
            `Invalid time format: Failed to parse input "${value}"`,
          );
        }
        return value;
      }
      case "google-duration": {
        const match = DURATION.exec(value);
        if (!match || Number(match[2]) > MAX_DURATION_SECONDS) {
          return badFormat(
            "google.protobuf.Duration",
            "Illegal duration format; duration must end with 's' and be at most 315576000000 seconds",
          );
        }
        return value;
      }
      case "google-fieldmask":
        return value
          .split(",")
          .map((part) => part.trim())
          .filter((part) => part.length > 0)
          .map((part) => part.split(".").map(camelCase).join("."))
          .join(",");
      case "byte":
        return BASE64.test(value) ? value : wrong();
      default:
        return value;
    }
  }
}

/** Google's wording for a list of issues: one line each. */
export function issuesMessage(issues: readonly ProtoJsonIssue[]): string {
  return issues.map((issue) => issue.description).join("\n");
}
