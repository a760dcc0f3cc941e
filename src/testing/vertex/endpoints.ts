/**
 * @internal The tuned model's endpoint: `generateContent`, `streamGenerateContent` and
 * `countTokens`. A tuned endpoint answers a trained input (with the trained system instruction)
 * with the trained output, anything else with the responder's answer.
 */
import { chunkText, defaultResponder, fakeTokenCount } from "../shared/generate.js";
import { fail, invalid, isRecord, type Reply } from "../shared/http.js";
import type { JobRecord, VertexFake } from "./state.js";
import { textOf } from "./tuning-jobs.js";

const RESPONSE_SCHEMA = "GoogleCloudAiplatformV1GenerateContentResponse";

/** The succeeded job serving `endpoints/{id}`, or 404. */
export function findEndpointJob(
  fake: VertexFake,
  project: string,
  location: string,
  endpointId: string,
): JobRecord {
  const job = [...fake.jobs.values()].find(
    (candidate) =>
      candidate.endpointId === endpointId &&
      candidate.project === project &&
      candidate.location === location &&
      candidate.job.phase === "succeeded",
  );
  if (job === undefined) {
    fail(
      "NOT_FOUND",
      `Endpoint projects/${project}/locations/${location}/endpoints/${endpointId} not found.`,
    );
  }
  return job;
}

function contentsOf(body: Record<string, unknown>): Array<Record<string, unknown>> {
  const contents = Array.isArray(body.contents)
    ? (body.contents as Array<Record<string, unknown>>)
    : [];
  if (contents.length === 0) {
    invalid("Unable to submit request because it has an empty contents field.", [
      { field: "contents", description: "contents is not specified" },
    ]);
  }
  return contents;
}

/** `:generateContent` (or, with `stream`, `:streamGenerateContent`) on a tuned endpoint. */
export function generateOnEndpoint(
  fake: VertexFake,
  job: JobRecord,
  body: Record<string, unknown>,
  stream: boolean,
): Reply {
  const contents = contentsOf(body);
  const input = textOf(contents.at(-1));
  const system = isRecord(body.systemInstruction)
    ? textOf(body.systemInstruction) || undefined
    : undefined;
  const seen =
    job.examples.find((example) => example.input === input && example.system === system) ??
    job.examples.find(
      (example) => example.input.trim() === input.trim() && example.system === system,
    );
  const endpoint = `projects/${job.project}/locations/${job.location}/endpoints/${job.endpointId}`;
  let text =
    seen?.output ??
    (fake.settings.respond ?? defaultResponder)(input, {
      name: endpoint,
      baseModel: String(job.request.baseModel ?? ""),
      examples: job.examples.map((e) => ({ textInput: e.input, output: e.output })),
    });
  let finishReason = "STOP";
  const config = isRecord(body.generationConfig) ? body.generationConfig : {};
  const maxTokens = typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
  if (maxTokens !== undefined && fakeTokenCount(text) > maxTokens) {
    text = text.slice(0, maxTokens * 4);
    finishReason = "MAX_TOKENS";
  }
  const promptTokenCount = fakeTokenCount(JSON.stringify(contents) + (system ?? ""));
  const candidatesTokenCount = fakeTokenCount(text);
  const whole = {
    candidates: [{ content: { role: "model", parts: [{ text }] }, finishReason, index: 0 }],
    usageMetadata: {
      promptTokenCount,
      candidatesTokenCount,
      totalTokenCount: promptTokenCount + candidatesTokenCount,
    },
    modelVersion: String(job.request.baseModel ?? ""),
    createTime: fake.clock.iso(),
    responseId: fake.newId(),
  };
  if (!stream) return { status: 200, schema: RESPONSE_SCHEMA, body: whole };
  const chunks = chunkText(text);
  const events = chunks.map((chunk, index) => ({
    ...whole,
    candidates: [
      {
        content: { role: "model", parts: [{ text: chunk }] },
        ...(index === chunks.length - 1 ? { finishReason } : {}),
        index: 0,
      },
    ],
  }));
  return { status: 200, schema: RESPONSE_SCHEMA, body: events, events };
}

/** `:countTokens` on a tuned endpoint (the same rough count as `usageMetadata`). */
export function countEndpointTokens(body: Record<string, unknown>): Reply {
  const contents = contentsOf(body);
  const system = isRecord(body.systemInstruction) ? textOf(body.systemInstruction) : "";
  const totalTokens = fakeTokenCount(JSON.stringify(contents) + system);
  return {
    status: 200,
    schema: "GoogleCloudAiplatformV1CountTokensResponse",
    body: { totalTokens, totalBillableCharacters: contents.map(textOf).join("").length },
  };
}
