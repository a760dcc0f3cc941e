/** Helpers shared by the test suites of every backend. */
import { Dataset } from "../src/core/dataset/dataset.js";
import type { JobEvent } from "../src/core/types.js";

/** `count` examples `"n" → "n+1"`, with an optional shared instruction. */
export function incrementDataset(count = 24, instruction?: string): Dataset {
  return Dataset.from(
    Array.from({ length: count }, (_, i) =>
      instruction === undefined
        ? { input: String(i), output: String(i + 1) }
        : { instruction, input: String(i), output: String(i + 1) },
    ),
  );
}

/** Collects every event of a stream until it ends. */
export async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}
