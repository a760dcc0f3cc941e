/**
 * The HttpClient extension points the Vertex backend added to the shared HTTP module: raw
 * (streamed) upload bodies produced afresh per attempt, per-request headers, and non-2xx
 * statuses accepted as answers (308 Resume Incomplete) without following them.
 */
import { describe, expect, it } from "vitest";
import { ServerError } from "../../src/core/errors.js";
import { AccessTokenAuth } from "../../src/remote/auth.js";
import { type FetchLike, HttpClient } from "../../src/remote/http.js";

interface Seen {
  url: string;
  headers: Record<string, string>;
  body: string;
  streamed: boolean;
  redirect: string | undefined;
}

function client(respond: (seen: Seen, attempt: number) => Response) {
  const seen: Seen[] = [];
  const fetch: FetchLike = async (url, init) => {
    const raw = init.body as unknown;
    let body = "";
    if (raw instanceof ReadableStream) body = await new Response(raw).text();
    else if (raw instanceof Uint8Array) body = Buffer.from(raw).toString("utf8");
    else if (typeof raw === "string") body = raw;
    const entry: Seen = {
      url,
      headers: init.headers as Record<string, string>,
      body,
      streamed: raw instanceof ReadableStream,
      redirect: (init as { redirect?: string }).redirect,
    };
    seen.push(entry);
    return respond(entry, seen.length);
  };
  const http = new HttpClient({
    baseUrl: "https://storage.example",
    apiVersion: "",
    auth: new AccessTokenAuth("token-abcdef"),
    fetch,
    initialRetryDelayMs: 1,
    maxRetryDelayMs: 2,
  });
  return { http, seen };
}

describe("HttpClient upload bodies", () => {
  it("streams an async iterable and re-creates it for each attempt", async () => {
    let made = 0;
    const { http, seen } = client((_, attempt) =>
      attempt === 1
        ? new Response('{"error":{"code":500,"message":"boom"}}', { status: 500 })
        : new Response('{"size":"6"}', { status: 200 }),
    );
    const result = await http.request<{ size: string }>({
      method: "POST",
      path: "upload/x",
      query: { uploadType: "media" },
      retry: true,
      upload: {
        contentType: "application/jsonl",
        data: () => {
          made++;
          return (async function* () {
            yield new TextEncoder().encode("ab\n");
            yield new TextEncoder().encode("cd\n");
          })();
        },
      },
    });
    expect(result.size).toBe("6");
    expect(made).toBe(2);
    expect(seen.map((s) => [s.streamed, s.body, s.headers["content-type"]])).toEqual([
      [true, "ab\ncd\n", "application/jsonl"],
      [true, "ab\ncd\n", "application/jsonl"],
    ]);
    expect(seen[0]?.url).toBe("https://storage.example/upload/x?uploadType=media");
  });

  it("a POST upload is not retried unless the caller says so", async () => {
    const { http, seen } = client(
      () => new Response('{"error":{"code":500,"message":"boom"}}', { status: 500 }),
    );
    await expect(
      http.request({
        method: "POST",
        path: "upload/x",
        upload: { contentType: "text/plain", data: () => "hello" },
      }),
    ).rejects.toBeInstanceOf(ServerError);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.streamed).toBe(false);
  });
});

describe("HttpClient per-request headers and accepted statuses", () => {
  it("sends extra headers, returns an accepted 308 and does not follow it", async () => {
    const { http, seen } = client(
      () => new Response(null, { status: 308, headers: { range: "bytes=0-9" } }),
    );
    const response = await http.send({
      method: "PUT",
      path: "session?upload_id=1",
      headers: { "content-range": "bytes 0-9/*" },
      upload: { contentType: "application/octet-stream", data: () => new Uint8Array(10) },
      acceptStatus: [308],
    });
    expect(response.status).toBe(308);
    expect(response.headers.get("range")).toBe("bytes=0-9");
    expect(seen[0]?.headers["content-range"]).toBe("bytes 0-9/*");
    expect(seen[0]?.headers.authorization).toBe("Bearer token-abcdef");
    expect(seen[0]?.redirect).toBe("manual");
    expect(seen[0]?.url).toBe("https://storage.example/session?upload_id=1");
  });

  it("still turns a status that is not accepted into a typed error", async () => {
    const { http } = client(() => new Response("nope", { status: 308 }));
    await expect(http.send({ method: "PUT", path: "s" })).rejects.toMatchObject({
      httpStatus: 308,
    });
  });
});
