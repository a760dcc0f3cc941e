import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import type { Example } from "./example.js";

/**
 * One JSON object per line: `{"instruction"?, "input", "output"}`, ending with a newline; a
 * multi-turn conversation is written as `{"messages": [...]}` (system turn first), which
 * loads back as the same example.
 */
export function examplesToJSONL(examples: readonly Example[]): string {
  let text = "";
  for (const { instruction, input, output, history } of examples) {
    if (history !== undefined && history.length > 0) {
      const messages = [
        ...(instruction ? [{ role: "system", content: instruction }] : []),
        ...history,
        { role: "user", content: input },
        { role: "assistant", content: output },
      ];
      text += `${JSON.stringify({ messages })}\n`;
      continue;
    }
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
