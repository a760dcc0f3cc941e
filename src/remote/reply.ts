/**
 * Checking server replies against zod schemas before tunekit reads them: a reply of the wrong
 * shape becomes an `InvalidResponseError` naming the field (`tuningTask.snapshots[2].step`),
 * not a crash or a wrong value later on.
 *
 * The schemas are lenient where the proto3 JSON mapping is: every field may be absent, unknown
 * fields are kept (a newer API may add some), enums are any string (a newer API may add
 * values), 64-bit integers may come as strings or numbers, floats as numbers or the strings
 * `"NaN"`, `"Infinity"`, `"-Infinity"`. Everything else must have its documented type.
 */
import { z } from "zod";
import { InvalidResponseError } from "../core/errors.js";

/** A 32-bit integer (proto3 JSON: a number, or a string of digits). */
export const protoInt32 = z.union([
  z.number().int(),
  z
    .string()
    .regex(/^-?\d+$/)
    .transform(Number),
]);

/** A 64-bit integer, kept as the decimal string proto3 JSON writes (a number is accepted). */
export const protoInt64 = z.union([
  z.string().regex(/^-?\d+$/),
  z
    .number()
    .int()
    .transform((n) => String(n)),
]);

/** A float or double (proto3 JSON: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`). */
export const protoFloat = z.union([
  z.number(),
  z.enum(["NaN", "Infinity", "-Infinity"]).transform(Number),
]);

/** An enum value by name: any string, so values added later do not break old clients. */
export const protoEnum = z.string();

/** An RFC 3339 timestamp string. */
export const protoTimestamp = z.string();

/** A google.rpc.Status (an operation's or a job's error). */
export const RpcStatusSchema = z.looseObject({
  code: protoInt32.optional(),
  message: z.string().optional(),
  details: z.array(z.unknown()).optional(),
});

/** `"a.b[2].c"` from a zod issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

/**
 * `value` checked against `schema` (and transformed by it), or an `InvalidResponseError` that
 * says which reply (`what`, e.g. `GET /v1beta/tunedModels/x`) and which field is wrong.
 */
export function checkReply<T>(schema: z.ZodType<T>, value: unknown, what: string, kind: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue ? fieldPath(issue.path) : "";
  const detail = issue ? issue.message : "unexpected shape";
  throw new InvalidResponseError(
    `${what} returned a malformed ${kind}: ${field === "" ? "the reply" : `field "${field}"`}: ${detail}`,
    { ...(field === "" ? {} : { field }), cause: result.error },
  );
}

const PartSchema = z.looseObject({
  text: z.string().optional(),
  thought: z.boolean().optional(),
});

/** A `Content` (role + parts) as both APIs write it. */
export const ContentSchema = z.looseObject({
  role: z.string().optional(),
  parts: z.array(PartSchema).optional(),
});

/**
 * `GenerateContentResponse` (and each event of a stream), the same message in the Gemini API
 * and Vertex AI as far as tunekit reads it.
 */
export const generateContentResponseSchema = z.looseObject({
  candidates: z
    .array(
      z.looseObject({
        content: ContentSchema.optional(),
        finishReason: protoEnum.optional(),
      }),
    )
    .optional(),
  promptFeedback: z
    .looseObject({
      blockReason: protoEnum.optional(),
      blockReasonMessage: z.string().optional(),
    })
    .optional(),
  usageMetadata: z
    .looseObject({
      promptTokenCount: protoInt32.optional(),
      candidatesTokenCount: protoInt32.optional(),
      totalTokenCount: protoInt32.optional(),
    })
    .optional(),
  modelVersion: z.string().optional(),
});
