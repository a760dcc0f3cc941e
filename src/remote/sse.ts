/**
 * A small Server-Sent Events reader for `?alt=sse` streams: yields the parsed JSON of each
 * `data:` event. Google's streaming endpoints send one JSON object per event.
 */
import { InvalidResponseError } from "../core/errors.js";

/** Yields each event's `data` (multi-line data joined with `\n`) as raw text. */
export async function* readSseData(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<string, void, undefined> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline = buffer.search(/\r\n|\r|\n/);
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        const width = buffer.startsWith("\r\n", newline) ? 2 : 1;
        buffer = buffer.slice(newline + width);
        if (line === "") {
          if (data.length > 0) yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        }
        newline = buffer.search(/\r\n|\r|\n/);
      }
      if (done) break;
    }
    if (buffer.startsWith("data:")) data.push(buffer.slice(5).replace(/^ /, ""));
    if (data.length > 0) yield data.join("\n");
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}

/** Yields each SSE event parsed as JSON. */
export async function* readSseJson<T = unknown>(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<T, void, undefined> {
  for await (const data of readSseData(body)) {
    if (data.trim() === "" || data.trim() === "[DONE]") continue;
    try {
      yield JSON.parse(data) as T;
    } catch (error) {
      throw new InvalidResponseError("A streamed event was not valid JSON", { cause: error });
    }
  }
}
