/** Dataset → Vertex JSONL, the `vertex` profiles, and streaming a large file to the upload. */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import { createFakeVertexHandlers, FakeVertexService } from "../../src/testing/index.js";
import {
  createVertexProfile,
  toVertexJsonl,
  toVertexLine,
  toVertexRecord,
  vertexJsonlChunks,
  vertexProfile,
  vertexValidationProfile,
} from "../../src/vertex/dataset.js";
import { BASE_MODEL, TOKEN, testTuner } from "./helpers.js";

async function collectChunks(source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

describe("toVertexRecord", () => {
  it("sends the instruction as systemInstruction and the pair as user/model turns", () => {
    expect(toVertexRecord({ instruction: "Answer briefly.", input: "What is AI?", output: "A field." })).toEqual({
      systemInstruction: { role: "system", parts: [{ text: "Answer briefly." }] },
      contents: [
        { role: "user", parts: [{ text: "What is AI?" }] },
        { role: "model", parts: [{ text: "A field." }] },
      ],
    });
    // systemInstruction comes first on the line, as in Vertex's own examples.
    expect(toVertexLine({ instruction: "s", input: "i", output: "o" })).toMatch(/^\{"systemInstruction":/);
  });

  it("has no systemInstruction without an instruction", () => {
    expect(toVertexRecord({ input: "1", output: "2" })).toEqual({
      contents: [
        { role: "user", parts: [{ text: "1" }] },
        { role: "model", parts: [{ text: "2" }] },
      ],
    });
    expect(toVertexRecord({ instruction: "", input: "1", output: "2" })).not.toHaveProperty(
      "systemInstruction",
    );
  });

  it("sends an instruction-only example's instruction as the user turn (a user turn needs text)", () => {
    expect(toVertexRecord({ instruction: "Say hello.", input: "", output: "Hello" })).toEqual({
      contents: [
        { role: "user", parts: [{ text: "Say hello." }] },
        { role: "model", parts: [{ text: "Hello" }] },
      ],
    });
  });

  it("keeps Unicode exactly, one example per line whatever the text holds", () => {
    const examples = [
      { instruction: "Réponds en français 🇫🇷", input: "你好，世界", output: "Bonjour 👋🏽" },
      { input: "مرحبا\u200f", output: "line one\nline two\r\n\ttabbed \"quoted\" \\ back" },
      { input: "\u2028separators\u2029", output: "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and \u0000 NUL" },
      { input: "lone \ud800 surrogate", output: "ok" },
    ];
    const jsonl = toVertexJsonl(examples);
    const lines = jsonl.split("\n");
    expect(lines).toHaveLength(examples.length + 1);
    expect(lines.at(-1)).toBe("");
    const back = lines.slice(0, -1).map((line) => JSON.parse(line));
    back.forEach((record, i) => {
      const example = examples[i] as (typeof examples)[number];
      expect(record.contents[0].parts[0].text).toBe(example.input);
      expect(record.contents[1].parts[0].text).toBe(example.output);
      if ("instruction" in example) expect(record.systemInstruction.parts[0].text).toBe(example.instruction);
    });
    // A lone surrogate is escaped, so the file stays valid UTF-8.
    expect(Buffer.from(jsonl, "utf8").toString("utf8")).toBe(jsonl);
    expect(jsonl).toContain("\\ud800");
  });
});

describe("vertexJsonlChunks", () => {
  const examples = Array.from({ length: 500 }, (_, i) => ({
    instruction: "Translate to Japanese.",
    input: `sentence ${i} — ünïcödé`,
    output: `文 ${i} ✓`,
  }));

  it("yields the same bytes as the whole file, in chunks that end at line ends", async () => {
    const chunks = await collectChunks(vertexJsonlChunks(examples, { chunkBytes: 1024 }));
    expect(chunks.length).toBeGreaterThan(10);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const joined = Buffer.concat(chunks).toString("utf8");
    expect(joined).toBe(toVertexJsonl(examples));
    for (const chunk of chunks) {
      const text = decoder.decode(chunk); // never splits a character
      expect(text.endsWith("\n")).toBe(true);
      // At most one line over the limit.
      expect(chunk.byteLength).toBeLessThan(1024 + 400);
    }
  });

  it("is lazy: nothing is encoded before the consumer asks", async () => {
    let read = 0;
    function* source() {
      for (const example of examples) {
        read++;
        yield example;
      }
    }
    const iterator = vertexJsonlChunks(source(), { chunkBytes: 2048 })[Symbol.asyncIterator]();
    expect(read).toBe(0);
    await iterator.next();
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(examples.length / 5);
    await iterator.return?.();
  });

  it("rejects a bad chunk size", async () => {
    await expect(collectChunks(vertexJsonlChunks(examples, { chunkBytes: 0 }))).rejects.toThrow(/chunkBytes/);
  });
});

describe("vertex limit profiles", () => {
  it("warns under the recommended 100 examples and errors on too few", () => {
    const small = Dataset.from([{ input: "a", output: "b" }]);
    expect(small.validate(vertexProfile)).toMatchObject({ valid: true, profile: "vertex" });
    expect(small.validate(vertexProfile).warnings[0]?.reason).toMatch(/about 100/);
    expect(small.validate(createVertexProfile({ minExamples: 2 })).valid).toBe(false);
  });

  it("warns on a validation set over 256 examples", () => {
    const big = Dataset.from(Array.from({ length: 300 }, (_, i) => ({ input: `${i}`, output: "x" })));
    const result = big.validate(vertexValidationProfile);
    expect(result.valid).toBe(true);
    expect(result.warnings[0]?.reason).toMatch(/256/);
  });
});

describe("a large dataset is streamed to the Cloud Storage upload", () => {
  const service = new FakeVertexService({ accessToken: TOKEN });
  const server = setupServer();
  beforeAll(() => {
    server.use(...createFakeVertexHandlers(service));
    server.listen({ onUnhandledRequest: "error" });
  });
  afterEach(() => service.reset());
  afterAll(() => server.close());

  it("sends a ReadableStream body in bounded chunks, and the object holds exactly the JSONL", async () => {
    const examples = Array.from({ length: 20_000 }, (_, i) => ({
      instruction: "Continue the story.",
      input: `Chapter ${i}: ${"lorem ipsum dolor sit amet ".repeat(8)}`,
      output: `…and then ${i} happened ✨ ${"ñ".repeat(40)}`,
    }));
    const dataset = Dataset.from(examples);
    const expected = toVertexJsonl(examples);
    const expectedBytes = Buffer.byteLength(expected, "utf8");
    expect(expectedBytes).toBeGreaterThan(8 * 1024 * 1024);

    const chunkBytes = 64 * 1024;
    const seen: { streamed: boolean; chunks: number; largest: number } = {
      streamed: false,
      chunks: 0,
      largest: 0,
    };
    const fetchSpy = async (url: string, init: RequestInit): Promise<Response> => {
      if (url.includes("/upload/storage/") && init.body instanceof ReadableStream) {
        seen.streamed = true;
        const source = init.body as ReadableStream<Uint8Array>;
        // Count the chunks as fetch pulls them, then hand them on unchanged.
        const counted = source.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              seen.chunks++;
              seen.largest = Math.max(seen.largest, chunk.byteLength);
              controller.enqueue(chunk);
            },
          }),
        );
        return globalThis.fetch(url, { ...init, body: counted } as RequestInit);
      }
      return globalThis.fetch(url, init);
    };
    const tuner = testTuner({ fetch: fetchSpy, uploadChunkBytes: chunkBytes });
    const job = await tuner.tune({ baseModel: BASE_MODEL, dataset });
    job.detach();

    expect(seen.streamed).toBe(true);
    expect(seen.chunks).toBeGreaterThanOrEqual(Math.floor(expectedBytes / (chunkBytes + 1024)));
    expect(seen.largest).toBeLessThan(chunkBytes + 1024);
    const [object] = service.listObjects();
    expect(object?.size).toBe(expectedBytes);
    expect(object?.text === expected).toBe(true);
    const upload = service.requests.find((r) => r.route === "uploadObject");
    expect(upload?.body).toEqual({ bytes: expectedBytes });
    const log = (await job.events()[Symbol.asyncIterator]().next()).value;
    expect(log).toBeDefined();
  });
});
