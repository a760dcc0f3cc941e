/**
 * The code samples of README.md and docs/ as the docs runner sees them (conventions:
 * docs/contributing.md, "Samples in the docs run in CI").
 *
 * A fenced block's info string is `lang [attribute …]`; GitHub shows only `lang`.
 * - `ts`, `typescript`, `js`, `javascript`: a program, run with tsx (a test file with vitest
 *   when it imports "vitest");
 * - `sh`, `bash`, `shell`: commands, run with bash -e;
 * - no language, `text`, `json`, `jsonl`, `csv`: output or data, never run;
 * - any other language (python, …) must say why it is not run: `skip="…"`.
 * Attributes: `skip="reason"` (reported as a skipped test), `continues` (appended to the
 * previous program of the same file), `file=path` (written to the working directory before
 * the next samples run), `background` (a long-running command: started, checked to be alive,
 * stopped after the file's other samples).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

export type SampleKind = "program" | "shell" | "data";

export interface Sample {
  /** The markdown file, relative to the repository. */
  file: string;
  /** Line of the opening fence (1-based). */
  line: number;
  lang: string;
  kind: SampleKind;
  code: string;
  skip?: string;
  continues: boolean;
  writesFile?: string;
  background: boolean;
}

const PROGRAM = new Set(["ts", "typescript", "js", "javascript", "mjs"]);
const SHELL = new Set(["sh", "bash", "shell"]);
const DATA = new Set(["", "text", "txt", "json", "jsonl", "csv"]);

/** `key="value with spaces"`, `key=value` or a bare `flag`. */
function parseAttributes(text: string): Record<string, string | true> {
  const attributes: Record<string, string | true> = {};
  for (const match of text.matchAll(/([\w-]+)(?:=(?:"([^"]*)"|(\S+)))?/g)) {
    const [, key, quoted, bare] = match;
    if (key) attributes[key] = quoted ?? bare ?? true;
  }
  return attributes;
}

/** Every fenced block of one markdown file, in order. */
export function samplesOf(repo: string, path: string): Sample[] {
  const file = relative(repo, path);
  const lines = readFileSync(path, "utf8").split("\n");
  const samples: Sample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+|~~~+)\s*([\w+-]*)\s*(.*)$/.exec(lines[i] ?? "");
    if (!open) continue;
    const [, indent = "", fence = "```", lang = "", rest = ""] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !(lines[j] ?? "").trimStart().startsWith(fence); j++) {
      body.push((lines[j] ?? "").slice(indent.length));
    }
    const attributes = parseAttributes(rest);
    const lower = lang.toLowerCase();
    const kind: SampleKind = PROGRAM.has(lower) ? "program" : SHELL.has(lower) ? "shell" : "data";
    const skip = typeof attributes.skip === "string" ? attributes.skip : undefined;
    samples.push({
      file,
      line: i + 1,
      lang: lower,
      kind,
      code: `${body.join("\n")}\n`,
      ...(skip ? { skip } : {}),
      continues: attributes.continues === true,
      ...(typeof attributes.file === "string" ? { writesFile: attributes.file } : {}),
      background: attributes.background === true,
    });
    i = j;
  }
  return samples;
}

/** Problems with the conventions: an unknown language without `skip`, a bad `continues`. */
export function conventionErrors(samples: readonly Sample[]): string[] {
  const errors: string[] = [];
  let lastProgram: Sample | undefined;
  for (const sample of samples) {
    const where = `${sample.file}:${sample.line}`;
    if (sample.kind === "data" && !DATA.has(sample.lang) && !sample.skip && !sample.writesFile) {
      errors.push(`${where}: a \`${sample.lang}\` block is not run; mark it skip="why"`);
    }
    if (sample.continues && (sample.kind !== "program" || !lastProgram)) {
      errors.push(`${where}: \`continues\` needs an earlier ts/js sample in the same file`);
    }
    if (sample.kind === "program") lastProgram = sample;
  }
  return errors;
}

/** README.md and every markdown file under docs/ (the generated docs/api excepted). */
export function documentedFiles(repo: string): string[] {
  const files = [join(repo, "README.md")];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && path !== join(repo, "docs", "api")) walk(path);
      else if (entry.isFile() && entry.name.endsWith(".md")) files.push(path);
    }
  };
  walk(join(repo, "docs"));
  return files;
}
