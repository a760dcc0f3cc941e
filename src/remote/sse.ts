/**
 * The Server-Sent Events reader of `?alt=sse` streams: yields the parsed JSON of each event's
 * `data`. Google's streaming endpoints send one JSON object per event. Parsing is
 * eventsource-parser's (line ends CRLF, LF or CR wherever the network splits them, multi-line
 * data, comments); its buffer is capped so a stream that never ends an event cannot grow
 * without bound.
 */
import { createParser, type EventSourceMessage, type ParseError } from "eventsource-parser";
import type { z } from "zod";
import { InvalidResponseError } from "../core/errors.js";
import { checkReply } from "./reply.js";

/** The longest event (or unterminated line) accepted: 32 MiB of text. */
export const MAX_SSE_EVENT_CHARS = 32 * 1024 * 1024;

/** Yields each event's `data` (multi-line data joined with `\n`) as raw text. */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
  options: { maxEventChars?: number } = {},
): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const ready: string[] = [];
  let failure: ParseError | undefined;
  const parser = createParser({
    onEvent: (event: EventSourceMessage) => ready.push(event.data),
    onError: (error: ParseError) => {
      // Unknown fields and bad `retry:` values are legal to ignore; an overlong event is not.
      if (error.type === "max-buffer-size-exceeded") failure ??= error;
    },
    maxBufferSize: options.maxEventChars ?? MAX_SSE_EVENT_CHARS,
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      // A last event without its blank line is still delivered.
      parser.feed(done ? `${decoder.decode()}\n\n` : decoder.decode(value, { stream: true }));
      if (failure) {
        throw new InvalidResponseError(
          `A streamed event was longer than ${options.maxEventChars ?? MAX_SSE_EVENT_CHARS} characters`,
          { cause: failure },
        );
      }
      while (ready.length > 0) yield ready.shift() as string;
      if (done) break;
    }
  } finally {
    reader.releaseLock();
    // Best effort and not awaited: under some transports (msw) cancelling a half-read body
    // settles late, and the caller must not wait for it.
    void body.cancel().catch(() => {});
  }
}

/**
 * Yields each SSE event parsed as JSON, checked against `reply.schema` when given (a mismatch
 * is an `InvalidResponseError` naming the event and the field).
 */
export async function* readSseJson<T = unknown>(
  body: ReadableStream<Uint8Array>,
  reply?: { schema: z.ZodType<T>; kind: string; what: string },
): AsyncGenerator<T, void, undefined> {
  let index = 0;
  for await (const data of readSseData(body)) {
    if (data.trim() === "" || data.trim() === "[DONE]") continue;
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch (error) {
      throw new InvalidResponseError("A streamed event was not valid JSON", { cause: error });
    }
    index++;
    yield reply
      ? checkReply(reply.schema, value, `${reply.what} (event ${index})`, reply.kind)
      : (value as T);
  }
}
