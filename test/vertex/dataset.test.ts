/** Dataset → Vertex JSONL, the `vertex` profiles, and streaming a large file to the upload. */
import { setupServer } from "msw/node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Dataset } from "../../src/core/dataset/dataset.js";
import { createFakeVertexHandlers, FakeVertexService } from "../../src/testing/index.js";
import {
  createVertexProfile,
  DEFAULT_CHUNK_BYTES,
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
    expect(
      toVertexRecord({ instruction: "Answer briefly.", input: "What is AI?", output: "A field." }),
    ).toEqual({
      systemInstruction: { role: "system", parts: [{ text: "Answer briefly." }] },
      contents: [
        { role: "user", parts: [{ text: "What is AI?" }] },
        { role: "model", parts: [{ text: "A field." }] },
      ],
    });
    // systemInstruction comes first on the line, as in Vertex's own examples.
    expect(toVertexLine({ instruction: "s", input: "i", output: "o" })).toMatch(
      /^\{"systemInstruction":/,
    );
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
      { input: "مرحبا\u200f", output: 'line one\nline two\r\n\ttabbed "quoted" \\ back' },
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
      if ("instruction" in example)
        expect(record.systemInstruction.parts[0].text).toBe(example.instruction);
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
    await expect(collectChunks(vertexJsonlChunks(examples, { chunkBytes: 0 }))).rejects.toThrow(
      /chunkBytes/,
    );
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
    const big = Dataset.from(
      Array.from({ length: 300 }, (_, i) => ({ input: `${i}`, output: "x" })),
    );
    const result = big.validate(vertexValidationProfile);
    expect(result.valid).toBe(true);
    expect(result.warnings[0]?.reason).toMatch(/256/);
  });
});

describe("large datasets reach Cloud Storage without being held in memory", () => {
  const service = new FakeVertexService({ accessToken: TOKEN });
  const server = setupServer();
  beforeAll(() => {
    server.use(...createFakeVertexHandlers(service));
    server.listen({ onUnhandledRequest: "error" });
  });
  afterEach(() => service.reset());
  afterAll(() => server.close());

  const examples = Array.from({ length: 20_000 }, (_, i) => ({
    instruction: "Continue the story.",
    input: `Chapter ${i}: ${"lorem ipsum dolor sit amet ".repeat(8)}`,
    output: `…and then ${i} happened ✨ ${"ñ".repeat(40)}`,
  }));
  const dataset = Dataset.from(examples);
  const expected = toVertexJsonl(examples);
  const expectedBytes = Buffer.byteLength(expected, "utf8");

  it("media mode streams one request body in bounded pieces; the object holds exactly the JSONL", async () => {
    expect(expectedBytes).toBeGreaterThan(8 * 1024 * 1024);
    const seen = { streamed: false, chunks: 0, largest: 0 };
    const fetchSpy = async (url: string, init: RequestInit): Promise<Response> => {
      if (url.includes("/upload/storage/") && init.body instanceof ReadableStream) {
        seen.streamed = true;
        // Count the pieces as fetch pulls them, then hand them on unchanged.
        const counted = (init.body as ReadableStream<Uint8Array>).pipeThrough(
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
    const job = await testTuner({ fetch: fetchSpy, uploadMode: "media" }).tune({
      baseModel: BASE_MODEL,
      dataset,
    });
    job.detach();
    expect(seen.streamed).toBe(true);
    expect(seen.chunks).toBeGreaterThanOrEqual(
      Math.floor(expectedBytes / (DEFAULT_CHUNK_BYTES + 1024)),
    );
    expect(seen.largest).toBeLessThan(DEFAULT_CHUNK_BYTES + 1024);
    const [object] = service.listObjects();
    expect(object?.size).toBe(expectedBytes);
    expect(object?.text === expected).toBe(true);
    expect(service.requests.find((r) => r.route === "uploadObject")?.body).toEqual({
      bytes: expectedBytes,
    });
  });

  it("auto mode sends a large file as a resumable upload, chunk by chunk, and survives faults mid-way", async () => {
    const chunk = 256 * 1024;
    // A chunk dropped before it arrives, one whose answer is lost after it was stored, a 503.
    service.faults.dropConnection({ route: "uploadChunk", skip: 2 });
    service.faults.loseResponse({ route: "uploadChunk", skip: 5 });
    service.faults.unavailable({ route: "uploadChunk", skip: 9 });
    const job = await testTuner({ uploadChunkBytes: chunk }).tune({
      baseModel: BASE_MODEL,
      dataset,
    });
    job.detach();
    const [object] = service.listObjects();
    expect(object?.size).toBe(expectedBytes);
    expect(object?.text === expected).toBe(true);

    const puts = service.requests.filter((r) => r.route === "uploadChunk");
    const dataPuts = puts.filter((r) => (r.body as { bytes: number } | undefined)?.bytes);
    const statusQueries = puts.filter((r) => /^bytes \*\//.test(r.headers["content-range"] ?? ""));
    expect(statusQueries).toHaveLength(3); // one before each repeat
    for (const put of dataPuts) {
      expect((put.body as { bytes: number }).bytes).toBeLessThanOrEqual(chunk);
    }
    // Every byte was sent once, plus the chunks that never arrived or failed (the lost one
    // was stored, so it is not sent again).
    const sent = dataPuts
      .filter((r) => r.outcome !== "dropped" && r.status !== 503)
      .reduce((sum, r) => sum + (r.body as { bytes: number }).bytes, 0);
    expect(sent).toBe(expectedBytes);
    expect(Math.ceil(expectedBytes / chunk)).toBeGreaterThanOrEqual(32);
    const started = service.requests.find((r) => r.route === "uploadObject");
    expect(started?.query.uploadType).toBe("resumable");
    const log = job.wire; // the job was created from the staged file
    expect(log.supervisedTuningSpec?.trainingDatasetUri).toBe(
      `gs://${object?.bucket}/${object?.name}`,
    );
  });

  it("sends a multi-turn conversation as its user/model contents, which the service accepts", async () => {
    const chat = Dataset.from(
      Array.from({ length: 3 }, (_, i) => ({
        messages: [
          { role: "system", content: "Count on." },
          { role: "user", content: `${i}` },
          { role: "assistant", content: `${i + 1}` },
          { role: "user", content: "and then?" },
          { role: "assistant", content: `${i + 2}` },
        ],
      })),
    );
    expect(toVertexRecord(chat.examples[0] as (typeof chat.examples)[0])).toEqual({
      systemInstruction: { role: "system", parts: [{ text: "Count on." }] },
      contents: [
        { role: "user", parts: [{ text: "0" }] },
        { role: "model", parts: [{ text: "1" }] },
        { role: "user", parts: [{ text: "and then?" }] },
        { role: "model", parts: [{ text: "2" }] },
      ],
    });
    const job = await testTuner().tune({ baseModel: BASE_MODEL, dataset: chat });
    job.detach();
    expect(service.listObjects()[0]?.text).toBe(toVertexJsonl(chat.examples));
    expect(job.wire.supervisedTuningSpec?.trainingDatasetUri).toMatch(/^gs:\/\//);
  });

  it("auto mode sends a small file as one media request", async () => {
    const small = Dataset.from(examples.slice(0, 50));
    const job = await testTuner().tune({ baseModel: BASE_MODEL, dataset: small });
    job.detach();
    const uploads = service.requests.filter((r) => r.route?.startsWith("upload"));
    expect(uploads.map((r) => [r.route, r.query.uploadType])).toEqual([["uploadObject", "media"]]);
    expect(service.listObjects()[0]?.text).toBe(toVertexJsonl(examples.slice(0, 50)));
  });

  it("resumable mode handles a file that ends exactly on a chunk boundary", async () => {
    // Lines of exactly 1 KiB → 256 lines fill one 256 KiB chunk.
    const line = (i: number) => ({ input: String(i).padStart(5, "0"), output: "" });
    const probe = toVertexLine({ ...line(0), output: "x" }).length;
    const pad = "x".repeat(1024 - probe + 1);
    const exact = Array.from({ length: 512 }, (_, i) => ({ ...line(i), output: pad }));
    expect(Buffer.byteLength(toVertexJsonl(exact))).toBe(512 * 1024);
    const job = await testTuner({ uploadMode: "resumable", uploadChunkBytes: 256 * 1024 }).tune({
      baseModel: BASE_MODEL,
      dataset: Dataset.from(exact),
    });
    job.detach();
    expect(service.listObjects()[0]?.text).toBe(toVertexJsonl(exact));
    const ranges = service.requests
      .filter((r) => r.route === "uploadChunk")
      .map((r) => r.headers["content-range"]);
    expect(ranges).toEqual(["bytes 0-262143/*", "bytes 262144-524287/*", "bytes */524288"]);
  });

  it("rejects a resumable chunk size that is not a multiple of 256 KiB", () => {
    expect(() => testTuner({ uploadChunkBytes: 100_000 })).toThrow(/256 KiB/);
  });
});
