import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import type { Example } from "./example.js";

/** One JSON object per line: `{"instruction"?, "input", "output"}`, ending with a newline. */
export function examplesToJSONL(examples: readonly Example[]): string {
  let text = "";
  for (const { instruction, input, output } of examples) {
    text +=
      instruction === undefined
        ? `${JSON.stringify({ input, output })}\n`
        : `${JSON.stringify({ instruction, input, output })}\n`;
  }
  return text;
}

/** Writes `text` to `path` through a temporary file and a rename, so no half file is left. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temporary, text, "utf8");
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
