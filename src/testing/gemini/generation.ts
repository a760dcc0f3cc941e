/**
 * @internal `generateContent`, `streamGenerateContent` and `countTokens`, on tuned models and
 * on base models. Answers are deterministic: a tuned model answers an input it was trained on
 * with the trained output; anything else (and every base-model call) gets the responder's
 * answer, by default `"<model> says: <last user text>"`.
 */
import { chunkText, defaultResponder, fakeTokenCount } from "../shared/generate.js";
import { fail, invalid, isRecord, type Reply } from "../shared/http.js";
import type { FakeBaseModel } from "./base-models.js";
import type { GeminiFake, TunedModelRecord } from "./state.js";
import { modelState } from "./tuned-models.js";

const MAX_TUNED_INPUT = 40_000;

type Content = Record<string, unknown>;

/** The text of a content's parts (non-text parts ignored). */
function textOf(content: unknown): string {
  return isRecord(content) && Array.isArray(content.parts)
    ? content.parts
        .map((part) => (isRecord(part) && typeof part.text === "string" ? part.text : ""))
        .join("")
    : "";
}

function contentsOf(body: Record<string, unknown>): Content[] {
  const contents = Array.isArray(body.contents) ? (body.contents as Content[]) : [];
  if (contents.length === 0) {
    invalid("* GenerateContentRequest.contents: contents is not specified", [
      { field: "contents", description: "contents is not specified" },
    ]);
  }
  return contents;
}

/** The last user turn: what a chat's new message is. */
function lastUserText(contents: readonly Content[]): string {
  const users = contents.filter((content) => content.role === undefined || content.role === "user");
  return textOf(users.at(-1) ?? contents.at(-1));
}

/** The checks the service makes on a tuned model's generate request. */
function checkTunedRequest(record: TunedModelRecord, body: Record<string, unknown>): Content[] {
  if (record.job.phase !== "succeeded") {
    fail(
      "FAILED_PRECONDITION",
      `Tuned model ${record.name} is not ready: its state is ${modelState(record)}.`,
    );
  }
  if (body.systemInstruction !== undefined) {
    invalid(`Developer instruction is not enabled for ${record.name}.`, [
      {
        field: "system_instruction",
        description: "Tuned models do not support system instructions.",
      },
    ]);
  }
  const config = isRecord(body.generationConfig) ? body.generationConfig : {};
  if (
    config.responseMimeType === "application/json" ||
    config.responseSchema !== undefined ||
    config.responseJsonSchema !== undefined
  ) {
    invalid(`JSON mode is not enabled for ${record.name}.`, [
      {
        field: "generation_config.response_mime_type",
        description: "Tuned models do not support JSON mode.",
      },
    ]);
  }
  const contents = contentsOf(body);
  let totalChars = 0;
  for (const content of contents) {
    for (const part of Array.isArray(content.parts) ? (content.parts as Content[]) : []) {
      if (typeof part.text !== "string") {
        invalid(`Tuned model ${record.name} accepts text input only.`, [
          {
            field: "contents.parts",
            description: "Only text parts are supported by tuned models.",
          },
        ]);
      }
      totalChars += part.text.length;
    }
  }
  if (totalChars > MAX_TUNED_INPUT) {
    invalid(
      `The input is ${totalChars} characters; tuned models accept at most ${MAX_TUNED_INPUT}.`,
      [{ field: "contents", description: `at most ${MAX_TUNED_INPUT} characters` }],
    );
  }
  return contents;
}

/** `tunedModels/{id}:generateContent` / `:streamGenerateContent`. */
export function generateTuned(
  fake: GeminiFake,
  record: TunedModelRecord,
  body: Record<string, unknown>,
  stream: boolean,
): Reply {
  const contents = checkTunedRequest(record, body);
  const input = lastUserText(contents);
  const seen =
    record.examples.find((example) => example.textInput === input) ??
    record.examples.find((example) => example.textInput.trim() === input.trim());
  const text =
    seen?.output ??
    (fake.settings.respond ?? defaultResponder)(input, {
      name: record.name,
      baseModel: record.baseModel,
      examples: record.examples,
    });
  return answer(fake, record.name, contents, body, text, stream);
}

/** `models/{id}:generateContent` / `:streamGenerateContent` on a base model. */
export function generateBase(
  fake: GeminiFake,
  model: FakeBaseModel,
  body: Record<string, unknown>,
  stream: boolean,
): Reply {
  if (!model.supportedGenerationMethods.includes("generateContent")) {
    fail(
      "NOT_FOUND",
      `${model.name} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.`,
    );
  }
  const contents = contentsOf(body);
  const text = (fake.settings.respond ?? defaultResponder)(lastUserText(contents), {
    name: model.name,
    baseModel: model.name,
    examples: [],
  });
  return answer(fake, model.name, contents, body, text, stream);
}

function answer(
  fake: GeminiFake,
  modelVersion: string,
  contents: readonly Content[],
  body: Record<string, unknown>,
  fullText: string,
  stream: boolean,
): Reply {
  const config = isRecord(body.generationConfig) ? body.generationConfig : {};
  let text = fullText;
  let finishReason = "STOP";
  const maxTokens = typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : undefined;
  if (maxTokens !== undefined && fakeTokenCount(text) > maxTokens) {
    text = text.slice(0, maxTokens * 4);
    finishReason = "MAX_TOKENS";
  }
  const promptTokenCount = promptTokens(contents, body.systemInstruction);
  const candidatesTokenCount = fakeTokenCount(text);
  const usageMetadata = {
    promptTokenCount,
    candidatesTokenCount,
    totalTokenCount: promptTokenCount + candidatesTokenCount,
  };
  const responseId = fake.randomId(16, true);
  if (!stream) {
    return {
      status: 200,
      schema: "GenerateContentResponse",
      body: {
        candidates: [{ content: { parts: [{ text }], role: "model" }, finishReason, index: 0 }],
        usageMetadata,
        modelVersion,
        responseId,
      },
    };
  }
  const chunks = chunkText(text);
  const events = chunks.map((chunk, index) => {
    const final = index === chunks.length - 1;
    return {
      candidates: [
        {
          content: { parts: [{ text: chunk }], role: "model" },
          ...(final ? { finishReason } : {}),
          index: 0,
        },
      ],
      usageMetadata: final
        ? usageMetadata
        : { promptTokenCount, totalTokenCount: promptTokenCount },
      modelVersion,
      responseId,
    };
  });
  return { status: 200, schema: "GenerateContentResponse", body: events, events };
}

function promptTokens(contents: readonly Content[], systemInstruction: unknown): number {
  return fakeTokenCount(
    contents.map((content) => JSON.stringify(content.parts ?? [])).join("") +
      (systemInstruction === undefined ? "" : textOf(systemInstruction)),
  );
}

/**
 * `:countTokens` with `contents` or a whole `generateContentRequest` (the same rough count
 * `usageMetadata.promptTokenCount` reports).
 */
export function countTokens(body: Record<string, unknown>): Reply {
  const request = isRecord(body.generateContentRequest) ? body.generateContentRequest : undefined;
  if (request !== undefined && body.contents !== undefined) {
    invalid("Only one of contents and generate_content_request may be set.", [
      { field: "generate_content_request", description: "contents is already set" },
    ]);
  }
  const contents = contentsOf(request ?? body);
  return {
    status: 200,
    schema: "CountTokensResponse",
    body: { totalTokens: promptTokens(contents, request?.systemInstruction) },
  };
}

/** countTokens on a tuned model needs it to be ready, like generate. */
export function countTunedTokens(record: TunedModelRecord, body: Record<string, unknown>): Reply {
  if (record.job.phase !== "succeeded") {
    fail(
      "FAILED_PRECONDITION",
      `Tuned model ${record.name} is not ready: its state is ${modelState(record)}.`,
    );
  }
  return countTokens(body);
}
