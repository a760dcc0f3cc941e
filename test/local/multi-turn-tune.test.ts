/**
 * A multi-turn dataset tuned end to end on the demo model (models/demo-counting, ≈10 s):
 * conversations that count on ("57" → "58", "and then?" → "59", "and then?" → "60"), so a
 * follow-up turn can only be answered from the earlier turns. Needs `npm run build:native`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ChatTurn } from "../../src/core/dataset/example.js";
import { Dataset, mulberry32 } from "../../src/core/dataset/index.js";
import { type LocalTunedModel, LocalTuner } from "../../src/local/index.js";

const DEMO = join(import.meta.dirname, "..", "..", "models", "demo-counting");
const root = mkdtempSync(join(tmpdir(), "tunekit-multi-turn-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A conversation counting on from `start` for three turns. */
function conversation(start: number) {
  const turns = [String(start), "and then?", "and then?"];
  return {
    messages: turns.flatMap((content, k) => [
      { role: "user", content },
      { role: "assistant", content: String(start + k + 1) },
    ]),
  };
}

describe("tuning the demo model on conversations", () => {
  it("answers follow-up turns from the conversation so far", async () => {
    const random = mulberry32(3);
    // Starts of 1 to 4 digits in equal numbers.
    const starts = Array.from({ length: 160 }, () => {
      const digits = 1 + Math.floor(random() * 4);
      return 10 ** (digits - 1) + Math.floor(random() * 9 * 10 ** (digits - 1));
    });
    const dataset = Dataset.from(starts.map(conversation));
    expect(dataset.examples[0]?.history).toHaveLength(4);
    const job = await new LocalTuner().tune({
      baseModel: DEMO,
      dataset,
      hyperparameters: { epochCount: 4, batchSize: 8, learningRate: 1e-3 },
      local: { outputDir: join(root, "run"), seed: 7 },
    });
    const tuned = (await job.wait()) as LocalTunedModel;
    try {
      const history = (start: number, turns: number): ChatTurn[] =>
        conversation(start)
          .messages.slice(0, 2 * turns)
          .map((t) => ({ role: t.role as ChatTurn["role"], content: t.content }));
      let right = 0;
      const held = [57, 1234, 8019, 499, 77, 6240]; // none is a training start
      expect(held.filter((n) => starts.includes(n))).toEqual([]);
      for (const start of held) {
        // The same question, answered from what was said before it.
        const second = await tuned.generate("and then?", {
          history: history(start, 1),
          maxOutputTokens: 12,
        });
        const third = await tuned.generate("and then?", {
          history: history(start, 2),
          maxOutputTokens: 12,
        });
        if (second === String(start + 2)) right++;
        if (third === String(start + 3)) right++;
      }
      // 11 or 12 here; a margin of one for other CPUs. Without the history it would be chance.
      expect(right).toBeGreaterThanOrEqual(10); // of 12 follow-up answers
    } finally {
      await tuned.dispose();
    }
  }, 120_000);
});
