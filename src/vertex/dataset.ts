/**
 * Training data in Vertex AI's supervised-tuning format: one JSON object per line,
 *
 * ```json
 * {"systemInstruction":{"role":"system","parts":[{"text":"Answer briefly."}]},
 *  "contents":[{"role":"user","parts":[{"text":"What is AI?"}]},
 *              {"role":"model","parts":[{"text":"AI is …"}]}]}
 * ```
 *
 * A multi-turn conversation sends every turn, in order (`user`, `model`, `user`, …, `model`).
 * An example's `instruction` becomes its `systemInstruction` (Vertex trains with a real system
 * field, unlike the Gemini API, so nothing is folded into the input). An example whose input is
 * empty sends its instruction as the user turn instead, since a user turn needs text.
 *
 * The JSONL is produced as a stream of chunks, so a large dataset is uploaded without ever
 * holding the whole file in memory.
 */
import type { Example } from "../core/dataset/example.js";
import type { LimitProfile } from "../core/dataset/profiles.js";
import { InvalidOptionError } from "../core/errors.js";

/** One turn of `contents`. */
export interface VertexContent {
  role: "user" | "model";
  parts: [{ text: string }];
}

/** One line of the training file. */
export interface VertexTrainingRecord {
  systemInstruction?: { role: "system"; parts: [{ text: string }] };
  /** User and model turns alternating, ending with the model turn (Vertex trains on model turns). */
  contents: VertexContent[];
}

/** The record one example becomes; a conversation's earlier turns lead its `contents`. */
export function toVertexRecord(example: Example): VertexTrainingRecord {
  const { instruction, input, output, history = [] } = example;
  const hasInstruction = instruction !== undefined && instruction.length > 0;
  const userText = input.length === 0 && hasInstruction ? instruction : input;
  const record: VertexTrainingRecord = {
    contents: [
      ...history.map(
        (turn): VertexContent => ({
          role: turn.role === "user" ? "user" : "model",
          parts: [{ text: turn.content }],
        }),
      ),
      { role: "user", parts: [{ text: userText }] },
      { role: "model", parts: [{ text: output }] },
    ],
  };
  if (hasInstruction && input.length > 0) {
    // Key order: systemInstruction first, as in Vertex's own examples.
    return { systemInstruction: { role: "system", parts: [{ text: instruction }] }, ...record };
  }
  return record;
}

/** The JSONL line (with its `\n`) of one example. */
export function toVertexLine(example: Example): string {
  return `${JSON.stringify(toVertexRecord(example))}\n`;
}

/** The whole file as one string (small datasets and tests; uploads use {@link vertexJsonlChunks}). */
export function toVertexJsonl(examples: Iterable<Example>): string {
  let out = "";
  for (const example of examples) out += toVertexLine(example);
  return out;
}

/** Default size of one upload chunk: 256 KiB. */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

/**
 * The JSONL file as UTF-8 chunks of about `chunkBytes` (a chunk ends at a line end, so one
 * chunk is larger only when a single line is). Lines are encoded as they are reached: memory
 * stays at one chunk whatever the dataset size. Each call starts over, so a retried upload
 * sends the same bytes.
 */
export async function* vertexJsonlChunks(
  examples: Iterable<Example>,
  options: { chunkBytes?: number } = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const limit = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new InvalidOptionError(
      "chunkBytes",
      `chunkBytes must be a whole number ≥ 1, got ${limit}`,
    );
  }
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let pendingBytes = 0;
  for (const example of examples) {
    const line = toVertexLine(example);
    pending.push(line);
    pendingBytes += Buffer.byteLength(line, "utf8");
    if (pendingBytes >= limit) {
      yield encoder.encode(pending.join(""));
      pending = [];
      pendingBytes = 0;
    }
  }
  if (pending.length > 0) yield encoder.encode(pending.join(""));
}

/** Vertex AI's dataset guidance, as documented (REMOTE-API-FACTS §5.3). */
export interface VertexLimits {
  /** Fewer examples is an error. @default 1 */
  minExamples: number;
  /** Fewer examples is a warning: Vertex recommends starting with about 100. @default 100 */
  recommendedExamples: number;
}

export const VERTEX_LIMITS: Readonly<VertexLimits> = Object.freeze({
  minExamples: 1,
  recommendedExamples: 100,
});

/**
 * The validation set's cap in older Vertex docs (256 examples); newer docs no longer state
 * it, so going over it is a warning, not an error.
 */
export const VERTEX_VALIDATION_SOFT_CAP = 256;

/**
 * The `vertex` limit profile. Vertex documents no per-example character limits for text
 * tuning (token limits depend on the base model and are enforced server-side, reported as
 * truncated or dropped examples in `tuningDataStats`), so this checks counts only.
 */
export function createVertexProfile(
  overrides: Partial<VertexLimits> & { role?: "training" | "validation" } = {},
): LimitProfile {
  const { role = "training", ...rest } = overrides;
  const limits: VertexLimits = { ...VERTEX_LIMITS, ...rest };
  return {
    name: role === "training" ? "vertex" : "vertex-validation",
    validate(examples, context) {
      const count = examples.length;
      if (role === "validation") {
        if (count === 0) context.dataset("the validation set is empty");
        else if (count > VERTEX_VALIDATION_SOFT_CAP) {
          context.dataset(
            `the validation set has ${count} examples; older Vertex AI docs cap it at ${VERTEX_VALIDATION_SOFT_CAP} (the service may reject or sample it)`,
            "warning",
          );
        }
        return;
      }
      if (count < limits.minExamples) {
        context.dataset(
          `too few examples: Vertex AI tuning needs at least ${limits.minExamples}, this dataset has ${count}`,
        );
      } else if (count < limits.recommendedExamples) {
        context.dataset(
          `only ${count} examples: Vertex AI recommends starting with about ${limits.recommendedExamples}`,
          "warning",
        );
      }
    },
  };
}

/** Vertex AI training-set profile: ≥ 1 example, < 100 warns. */
export const vertexProfile: LimitProfile = createVertexProfile();

/** Vertex AI validation-set profile: not empty, > 256 warns. */
export const vertexValidationProfile: LimitProfile = createVertexProfile({ role: "validation" });
