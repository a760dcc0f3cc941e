import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { InvalidDatasetError } from "../../../src/core/errors.js";

/** A temporary directory for the current test file, removed afterwards. */
export function useTempDir(): {
  path(name: string): string;
  write(name: string, text: string | Buffer): Promise<string>;
} {
  let directory = "";
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "tunekit-dataset-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });
  return {
    path: (name) => join(directory, name),
    async write(name, text) {
      const path = join(directory, name);
      await writeFile(path, text);
      return path;
    },
  };
}

/** Serialises rows as RFC 4180 CSV (every field quoted, CRLF line ends). */
export function toCsv(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const quote = (field: string) => `"${field.replaceAll('"', '""')}"`;
  return `${[header, ...rows].map((row) => row.map(quote).join(",")).join("\r\n")}\r\n`;
}

export function toJsonl(records: readonly unknown[]): string {
  return `${records.map((record) => JSON.stringify(record)).join("\n")}\n`;
}

/** Runs `run` and returns the `InvalidDatasetError` it throws (fails if it throws anything else). */
export async function catchInvalid(run: () => unknown): Promise<InvalidDatasetError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof InvalidDatasetError) return error;
    throw error;
  }
  throw new Error("expected an InvalidDatasetError, but nothing was thrown");
}

/** `count` distinct Gemini-shaped records. */
export function geminiRecords(count: number): { text_input: string; output: string }[] {
  return Array.from({ length: count }, (_, i) => ({ text_input: `${i}`, output: `${i + 1}` }));
}
