import { describe, expect, it } from "vitest";
import { PagePromise } from "../../src/remote/pager.js";
import { readSseJson } from "../../src/remote/sse.js";

function threePages() {
  const tokens: (string | undefined)[] = [];
  const pages: Record<string, { items: number[]; nextPageToken?: string }> = {
    start: { items: [1, 2], nextPageToken: "p2" },
    p2: { items: [3, 4], nextPageToken: "p3" },
    p3: { items: [5] },
  };
  const pager = new PagePromise<number>(async (token) => {
    tokens.push(token);
    return pages[token ?? "start"] as { items: number[] };
  });
  return { pager, tokens };
}

describe("PagePromise", () => {
  it("is awaitable for the first page only", async () => {
    const { pager, tokens } = threePages();
    const page = await pager;
    expect(page.items).toEqual([1, 2]);
    expect(page.hasNextPage()).toBe(true);
    expect(tokens).toEqual([undefined]);
    const next = await page.nextPage();
    expect(next.items).toEqual([3, 4]);
    expect(tokens).toEqual([undefined, "p2"]);
  });

  it("iterates every item across all pages, fetching lazily", async () => {
    const { pager, tokens } = threePages();
    expect(tokens).toEqual([]); // nothing fetched before use
    const items: number[] = [];
    for await (const item of pager) items.push(item);
    expect(items).toEqual([1, 2, 3, 4, 5]);
    expect(tokens).toEqual([undefined, "p2", "p3"]);
  });

  it("iterates pages and collects all()", async () => {
    const { pager } = threePages();
    const sizes: number[] = [];
    for await (const page of pager.pages()) sizes.push(page.items.length);
    expect(sizes).toEqual([2, 2, 1]);
    expect(await threePages().pager.all()).toEqual([1, 2, 3, 4, 5]);
  });

  it("starts at a given page token", async () => {
    const { tokens } = threePages();
    const pages: Record<string, { items: number[]; nextPageToken?: string }> = {
      p3: { items: [5] },
    };
    const pager = new PagePromise<number>(async (token) => {
      tokens.push(token);
      return pages[token as string] as { items: number[] };
    }, "p3");
    expect((await pager).items).toEqual([5]);
    expect(tokens).toEqual(["p3"]);
  });
});

describe("readSseJson", () => {
  it("parses data events split across chunks, with CRLF and multi-line data", async () => {
    const text = 'data: {"a":1}\r\n\r\ndata: {"b":\ndata: 2}\n\n: comment\n\ndata: {"c":3}';
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 5) controller.enqueue(bytes.slice(i, i + 5));
        controller.close();
      },
    });
    const events: unknown[] = [];
    for await (const event of readSseJson(stream)) events.push(event);
    expect(events).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
  });
});
