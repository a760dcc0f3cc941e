import { createInterface } from "node:readline";
import type { CliIO } from "./output.js";

/** True when a person can answer a question (stdin is a terminal). */
export function canPrompt(io: CliIO): boolean {
  return io.stdin?.isTTY === true;
}

/**
 * Asks a yes/no question on stderr and reads the answer from a terminal. Anything but
 * "y"/"yes" — an empty line, Ctrl-C, Ctrl-D, or no terminal at all — means no.
 */
export function confirm(question: string, io: CliIO): Promise<boolean> {
  const input = io.stdin;
  if (!input || !canPrompt(io)) return Promise.resolve(false);
  const rl = createInterface({ input, output: io.stderr, terminal: true });
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const finish = (answer: boolean) => {
      if (settled) return;
      settled = true;
      rl.close();
      resolve(answer);
    };
    rl.on("SIGINT", () => {
      io.stderr.write("\n");
      finish(false);
    });
    rl.on("close", () => finish(false));
    rl.question(question, (answer) => finish(/^y(es)?$/i.test(answer.trim())));
  });
}
