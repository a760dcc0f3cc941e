/**
 * Regenerates the enum-number tables of the fakes (`src/testing/gemini/enum-numbers.generated.ts`
 * and `src/testing/vertex/enum-numbers.generated.ts`) from the `.proto` files of a googleapis
 * checkout. Discovery documents list enum values in declaration order but not their numbers,
 * and declaration order is not number order (`Candidate.FinishReason`: `LANGUAGE = 6` is
 * declared before `OTHER = 5`), so the numbers come from the protos.
 *
 * Dev-only (CI uses the committed files):
 *
 *   npx tsx scripts/extract-enum-numbers.ts <googleapis dir> [revision label]
 *   npx biome format --write src/testing
 *
 * For every enum-valued property of the fakes' discovery schemas, the script finds the proto
 * message of the schema (by name, nested messages joined as discovery joins them), the field,
 * and the enum type the field refers to (resolved with proto scoping rules).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { BUNDLED_SCHEMAS } from "../src/testing/gemini/schemas.js";
import type { DiscoverySchema, DiscoverySchemas } from "../src/testing/shared/schema-validator.js";
import { VERTEX_SCHEMAS } from "../src/testing/vertex/schemas.js";

interface ProtoEnum {
  fullName: string;
  values: Map<string, number>;
}
interface ProtoField {
  name: string;
  type: string;
}
interface ProtoMessage {
  fullName: string;
  /** Nested names joined without dots (`SupervisedTuningDatasetDistributionDatasetBucket`). */
  joined: string;
  fields: Map<string, ProtoField>;
}

function tokenize(source: string): string[] {
  // Comments go, string literals stay (they may hold "//", as in "https://…").
  const text = source.replace(
    /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\/\/[^\n]*|\/\*[\s\S]*?\*\//g,
    (match) => (match.startsWith("/") ? " " : match),
  );
  return text.match(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_][\w.]*|-?\d[\w.]*|\S/g) ?? [];
}

class ProtoFile {
  pkg = "";
  readonly messages: ProtoMessage[] = [];
  readonly enums: ProtoEnum[] = [];
  #tokens: string[];
  #at = 0;

  constructor(source: string) {
    this.#tokens = tokenize(source);
    while (this.#at < this.#tokens.length) this.#topLevel();
  }

  #next(): string {
    return this.#tokens[this.#at++] ?? "";
  }
  #peek(): string {
    return this.#tokens[this.#at] ?? "";
  }
  /** Skips to the end of a statement or a balanced block. */
  #skipStatement(): void {
    let depth = 0;
    while (this.#at < this.#tokens.length) {
      const token = this.#next();
      if (token === "{") depth++;
      else if (token === "}") {
        depth--;
        if (depth <= 0) {
          if (this.#peek() === ";") this.#next(); // `option x = { … };`
          return;
        }
      } else if (token === ";" && depth === 0) return;
    }
  }
  #skipOptions(): void {
    if (this.#peek() !== "[") return;
    let depth = 0;
    do {
      const token = this.#next();
      if (token === "[" || token === "{") depth++;
      else if (token === "]" || token === "}") depth--;
    } while (depth > 0 && this.#at < this.#tokens.length);
  }
  #topLevel(): void {
    const token = this.#peek();
    if (token === "package") {
      this.#next();
      this.pkg = this.#next();
      this.#next();
    } else if (token === "message") {
      this.#message(this.pkg, "");
    } else if (token === "enum") {
      this.#enum(this.pkg);
    } else {
      this.#skipStatement();
    }
  }
  #message(scope: string, joinedScope: string): void {
    this.#next(); // message
    const name = this.#next();
    this.#next(); // {
    const fullName = `${scope}.${name}`;
    const message: ProtoMessage = {
      fullName,
      joined: `${joinedScope}${name}`,
      fields: new Map(),
    };
    this.messages.push(message);
    for (;;) {
      const token = this.#peek();
      if (token === "}" || token === "") {
        this.#next();
        return;
      }
      if (token === "message") this.#message(fullName, message.joined);
      else if (token === "enum") this.#enum(fullName);
      else if (token === "oneof") {
        this.#next();
        this.#next();
        this.#next(); // {
        while (this.#peek() !== "}") {
          if (this.#peek() === "option") this.#skipStatement();
          else this.#field(message);
        }
        this.#next();
      } else if (["option", "reserved", "extensions", "extend"].includes(token)) {
        this.#skipStatement();
      } else {
        this.#field(message);
      }
    }
  }
  #field(message: ProtoMessage): void {
    let token = this.#next();
    if (token === "repeated" || token === "optional" || token === "required") token = this.#next();
    let type = token;
    if (token === "map") {
      // map<K, V>
      this.#next(); // <
      this.#next(); // K
      this.#next(); // ,
      type = this.#next();
      this.#next(); // >
    }
    const name = this.#next();
    this.#next(); // =
    this.#next(); // number
    this.#skipOptions();
    this.#next(); // ;
    message.fields.set(name, { name, type });
  }
  #enum(scope: string): void {
    this.#next(); // enum
    const name = this.#next();
    this.#next(); // {
    const values = new Map<string, number>();
    for (;;) {
      const token = this.#next();
      if (token === "}" || token === "") break;
      if (token === "option" || token === "reserved") {
        this.#at--;
        this.#skipStatement();
        continue;
      }
      this.#next(); // =
      const number = Number(this.#next());
      this.#skipOptions();
      this.#next(); // ;
      values.set(token, number);
    }
    this.enums.push({ fullName: `${scope}.${name}`, values });
  }
}

function protoFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...protoFiles(path));
    else if (entry.name.endsWith(".proto")) out.push(path);
  }
  return out;
}

function load(
  root: string,
  dir: string,
): { messages: ProtoMessage[]; enums: Map<string, ProtoEnum> } {
  const messages: ProtoMessage[] = [];
  const enums = new Map<string, ProtoEnum>();
  for (const file of protoFiles(join(root, dir))) {
    const parsed = new ProtoFile(readFileSync(file, "utf8"));
    messages.push(...parsed.messages);
    for (const e of parsed.enums) enums.set(e.fullName, e);
  }
  return { messages, enums };
}

/** The enum a field type names, resolved from the message's scope outwards (proto rules). */
function resolveEnum(
  type: string,
  scope: string,
  enums: Map<string, ProtoEnum>,
): ProtoEnum | undefined {
  if (type.startsWith(".")) return enums.get(type.slice(1));
  const parts = scope.split(".");
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), type].join(".");
    const found = enums.get(candidate);
    if (found) return found;
  }
  return undefined;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Table: schema → property → { type, values }. */
type Table = Record<string, Record<string, { type: string; values: Record<string, number> }>>;

function build(
  schemas: DiscoverySchemas,
  schemaPrefix: string,
  protos: { messages: ProtoMessage[]; enums: Map<string, ProtoEnum> },
  pkg: string,
): { table: Table; problems: string[] } {
  const table: Table = {};
  const problems: string[] = [];
  const byJoined = new Map<string, ProtoMessage[]>();
  for (const message of protos.messages) {
    if (!message.fullName.startsWith(`${pkg}.`)) continue;
    const list = byJoined.get(message.joined) ?? [];
    list.push(message);
    byJoined.set(message.joined, list);
  }
  const byShort = new Map<string, ProtoMessage[]>();
  for (const message of protos.messages) {
    if (!message.fullName.startsWith(`${pkg}.`)) continue;
    const short = message.fullName.split(".").pop() as string;
    const list = byShort.get(short) ?? [];
    list.push(message);
    byShort.set(short, list);
  }
  for (const [schemaName, schema] of Object.entries(schemas).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    const enumProps = Object.entries(schema.properties ?? {}).filter(
      ([, p]: [string, DiscoverySchema]) => p.enum || p.items?.enum,
    );
    if (enumProps.length === 0) continue;
    if (!schemaName.startsWith(schemaPrefix)) {
      problems.push(`${schemaName}: not a ${pkg} schema`);
      continue;
    }
    const name = schemaName.slice(schemaPrefix.length);
    const candidates = byJoined.get(name) ?? byShort.get(name) ?? [];
    if (candidates.length !== 1) {
      problems.push(`${schemaName}: ${candidates.length} proto messages match`);
      continue;
    }
    const message = candidates[0] as ProtoMessage;
    for (const [property, prop] of enumProps) {
      const field = message.fields.get(snake(property));
      const discoveryValues = prop.enum ?? prop.items?.enum ?? [];
      const protoEnum = field && resolveEnum(field.type, message.fullName, protos.enums);
      if (!protoEnum) {
        problems.push(`${schemaName}.${property}: no enum field in ${message.fullName}`);
        continue;
      }
      const values: Record<string, number> = {};
      for (const value of discoveryValues) {
        const number = protoEnum.values.get(value);
        if (number === undefined)
          problems.push(`${schemaName}.${property}: ${value} not in ${protoEnum.fullName}`);
        else values[value] = number;
      }
      table[schemaName] ??= {};
      (table[schemaName] as Table[string])[property] = { type: protoEnum.fullName, values };
    }
  }
  return { table, problems };
}

function write(target: string, header: string, constName: string, table: Table): void {
  const body = `${header}
import type { EnumNumbers } from "../shared/proto-json.js";

/** Proto enum numbers of every enum-valued property of the fake's schemas. */
export const ${constName}: EnumNumbers = ${JSON.stringify(table, null, 2)};
`;
  writeFileSync(target, body);
}

const root = process.argv[2];
if (!root) {
  console.error("usage: npx tsx scripts/extract-enum-numbers.ts <googleapis checkout>");
  process.exit(2);
}
const gemini = build(
  BUNDLED_SCHEMAS,
  "",
  load(root, "google/ai/generativelanguage/v1beta"),
  "google.ai.generativelanguage.v1beta",
);
const vertexProtos = load(root, "google/cloud/aiplatform/v1");
const rpc = load(root, "google/rpc");
const vertex = build(
  Object.fromEntries(
    Object.entries(VERTEX_SCHEMAS).filter(([name]) => name.startsWith("GoogleCloudAiplatformV1")),
  ),
  "GoogleCloudAiplatformV1",
  { messages: [...vertexProtos.messages, ...rpc.messages], enums: vertexProtos.enums },
  "google.cloud.aiplatform.v1",
);
const revision = process.argv[3] ?? relative(process.cwd(), root);
const note = (what: string) =>
  `// Generated by scripts/extract-enum-numbers.ts from the ${what} protos of googleapis\n// (${revision}). Do not edit by hand. Values the protos lack keep their names on the wire.`;
write(
  "src/testing/gemini/enum-numbers.generated.ts",
  note("google/ai/generativelanguage/v1beta"),
  "GEMINI_ENUM_NUMBERS",
  gemini.table,
);
write(
  "src/testing/vertex/enum-numbers.generated.ts",
  note("google/cloud/aiplatform/v1"),
  "VERTEX_ENUM_NUMBERS",
  vertex.table,
);
for (const problem of [...gemini.problems, ...vertex.problems]) console.warn(`warning: ${problem}`);
console.log(
  `gemini: ${Object.keys(gemini.table).length} schemas; vertex: ${Object.keys(vertex.table).length} schemas`,
);
