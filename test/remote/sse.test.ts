/**
 * The SSE reader of `?alt=sse` streams: events split wherever the network splits them, CRLF,
 * CR or LF line ends, multi-line data, comments and a last event without a blank line.
 */
import { describe, expect, it } from "vitest";
import { InvalidResponseError } from "../../src/core/errors.js";
import { readSseData, readSseJson } from "../../src/remote/sse.js";

function stream(chunks: readonly string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function events(chunks: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const data of readSseData(stream(chunks))) out.push(data);
  return out;
}

describe("readSseData", () => {
  it("keeps one event whole when a CRLF is split across two chunks", async () => {
    expect(await events(["data: a\r", "\ndata: b\r\n\r\n"])).toEqual(["a\nb"]);
    expect(await events(['data: {"x":1}\r', "\n\r", "\n", 'data: {"x":2}\r\n\r\n'])).toEqual([
      '{"x":1}',
      '{"x":2}',
    ]);
  });

  it("gives the same events however the bytes are chunked", async () => {
    const text =
      'data: {"n":1}\r\n\r\ndata: {"n":2}\r\ndata: more\r\n\r\n: comment\r\n\r\ndata: {"n":3}\n\n';
    const expected = ['{"n":1}', '{"n":2}\nmore', '{"n":3}'];
    for (let size = 1; size <= text.length; size++) {
      const chunks: string[] = [];
      for (let at = 0; at < text.length; at += size) chunks.push(text.slice(at, at + size));
      expect(await events(chunks), `chunks of ${size}`).toEqual(expected);
    }
  });

  it("accepts LF and CR line ends and a last event without a blank line", async () => {
    expect(await events(["data: one\n\ndata: two\r\rdata: three"])).toEqual([
      "one",
      "two",
      "three",
    ]);
  });

  it("decodes a multi-byte character split across chunks", async () => {
    const bytes = new TextEncoder().encode("data: é✓\n\n");
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const byte of bytes) controller.enqueue(Uint8Array.of(byte));
        controller.close();
      },
    });
    const out: string[] = [];
    for await (const data of readSseData(body)) out.push(data);
    expect(out).toEqual(["é✓"]);
  });
});

describe("the event size guard", () => {
  it("rejects an event longer than maxEventChars instead of buffering it", async () => {
    const body = stream([`data: ${"x".repeat(5_000)}`, "y".repeat(5_000), "\n\n"]);
    const read = (async () => {
      for await (const _ of readSseData(body, { maxEventChars: 4_096 })) {
        // consume
      }
    })();
    await expect(read).rejects.toThrow(/longer than 4096 characters/);
  });
});

describe("readSseJson", () => {
  it("parses each event and names a bad one", async () => {
    const out: unknown[] = [];
    for await (const value of readSseJson(stream(['data: {"a":1}\r\n\r\n', "data: [DONE]\n\n"])))
      out.push(value);
    expect(out).toEqual([{ a: 1 }]);
    const bad = (async () => {
      for await (const _ of readSseJson(stream(["data: {oops\n\n"]))) {
        // consume
      }
    })();
    await expect(bad).rejects.toBeInstanceOf(InvalidResponseError);
  });
});
