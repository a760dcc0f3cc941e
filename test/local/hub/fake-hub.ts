/**
 * A tiny stand-in for huggingface.co on 127.0.0.1 (random port) serving the endpoints
 * tunekit's downloader uses, with the headers the real hub sends:
 *
 * - `GET /api/models/{org}/{name}/revision/{rev}` → model info with `sha` and `siblings`;
 * - `GET /{org}/{name}/resolve/{rev}/{file}` → small files directly (`ETag` = git blob
 *   sha1, `X-Repo-Commit`); LFS files (`*.safetensors`) as a 302 to `/cdn/{sha256}` carrying
 *   `X-Linked-Etag`, `X-Linked-Size` and `X-Repo-Commit`, like the hub's redirect to its CDN (here the
 *   same server as `http://localhost:{port}`, another origin);
 * - `GET /cdn/{sha256}` → the bytes, with `Range` support and an MD5 `ETag` (as S3 sends).
 *
 * `HEAD` works on every route (Node drops the body).
 *
 * Unknown repos, revisions and files answer 404 with the hub's `X-Error-Code`.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRepo {
  /** Branch/tag name → commit. */
  refs: Record<string, string>;
  /** Commit → file path → contents. */
  commits: Record<string, Record<string, Buffer | string>>;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FakeHub {
  url: string;
  /** The same server under another origin (`localhost`), standing in for the CDN. */
  cdnUrl: string;
  requests: LoggedRequest[];
  /** Serve at most this many bytes of a CDN blob, then stall until the client hangs up. */
  stall: { sha256: string; afterBytes: number } | undefined;
  /** Answer 200 with the whole body even when a Range was asked for. */
  ignoreRange: boolean;
  close(): Promise<void>;
}

export const gitBlobSha1 = (data: Buffer): string =>
  createHash("sha1")
    .update(Buffer.concat([Buffer.from(`blob ${data.length}\0`), data]))
    .digest("hex");

export const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

export const isLfs = (path: string): boolean => path.endsWith(".safetensors");

function notFound(res: ServerResponse, code: string, message: string): void {
  res.writeHead(404, { "Content-Type": "application/json", "X-Error-Code": code });
  res.end(JSON.stringify({ error: message }));
}

function sendBytes(
  req: IncomingMessage,
  res: ServerResponse,
  data: Buffer,
  headers: Record<string, string>,
  hub: FakeHub,
  stallAt: number | undefined,
): void {
  // `ignoreRange` models a server that cannot resume; the size probe (bytes=0-0) still works.
  const range =
    hub.ignoreRange && req.headers.range !== "bytes=0-0" ? undefined : req.headers.range;
  let start = 0;
  let end = data.length - 1;
  let status = 200;
  if (range) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
      status = 206;
      headers["Content-Range"] = `bytes ${start}-${end}/${data.length}`;
    }
  }
  const body = data.subarray(start, end + 1);
  res.writeHead(status, {
    ...headers,
    "Accept-Ranges": "bytes",
    "Content-Length": String(body.length),
    "Content-Type": "application/octet-stream",
  });
  if (stallAt !== undefined && body.length > 1 && start < stallAt) {
    // Send the first part, then hang until the client goes away.
    res.write(body.subarray(0, stallAt - start));
    return;
  }
  res.end(body);
}

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const blobs = new Map<string, Buffer>();
  for (const repo of Object.values(repos)) {
    for (const files of Object.values(repo.commits)) {
      for (const content of Object.values(files)) {
        const data = Buffer.from(content);
        blobs.set(sha256(data), data);
      }
    }
  }
  const resolveRev = (repo: FakeRepo, rev: string): string | undefined =>
    repo.refs[rev] ?? (repo.commits[rev] ? rev : undefined);

  const hub: FakeHub = {
    url: "",
    cdnUrl: "",
    requests: [],
    stall: undefined,
    ignoreRange: false,
    close: async () => {},
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    hub.requests.push({
      method: req.method ?? "GET",
      path: url.pathname,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);

    if (parts[0] === "api" && parts[1] === "models" && parts[4] === "revision") {
      const name = `${parts[2]}/${parts[3]}`;
      const repo = repos[name];
      if (!repo) return notFound(res, "RepoNotFound", "Repository not found");
      const commit = resolveRev(repo, parts.slice(5).join("/"));
      if (!commit) return notFound(res, "RevisionNotFound", "Invalid rev id");
      const files = repo.commits[commit] ?? {};
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          _id: "0123",
          id: name,
          private: false,
          gated: false,
          downloads: 0,
          likes: 0,
          lastModified: "2026-01-01T00:00:00.000Z",
          sha: commit,
          siblings: Object.keys(files).map((rfilename) => ({ rfilename })),
        }),
      );
      return;
    }

    if (parts[0] === "cdn" && parts[1]) {
      const data = blobs.get(parts[1]);
      if (!data) return notFound(res, "EntryNotFound", "no blob");
      const stallAt = hub.stall?.sha256 === parts[1] ? hub.stall.afterBytes : undefined;
      // Like S3/CloudFront: the CDN's ETag is an MD5, not the sha256 the cache is keyed by.
      const md5 = createHash("md5").update(data).digest("hex");
      return sendBytes(req, res, data, { ETag: `"${md5}"` }, hub, stallAt);
    }

    if (parts[2] === "resolve") {
      const name = `${parts[0]}/${parts[1]}`;
      const repo = repos[name];
      if (!repo) return notFound(res, "RepoNotFound", "Repository not found");
      const commit = resolveRev(repo, parts[3] ?? "");
      if (!commit) return notFound(res, "RevisionNotFound", "Invalid rev id");
      const path = parts.slice(4).join("/");
      const content = repo.commits[commit]?.[path];
      if (content === undefined) return notFound(res, "EntryNotFound", "Entry not found");
      const data = Buffer.from(content);
      if (isLfs(path)) {
        const oid = sha256(data);
        res.writeHead(302, {
          // Another origin, like the hub's CDN: not followed for metadata, no token sent.
          Location: `${hub.cdnUrl}/cdn/${oid}`,
          ETag: `"${gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${data.length}\n`))}"`,
          "X-Linked-Etag": `"${oid}"`,
          "X-Linked-Size": String(data.length),
          "X-Repo-Commit": commit,
        });
        res.end();
        return;
      }
      return sendBytes(
        req,
        res,
        data,
        { ETag: `"${gitBlobSha1(data)}"`, "X-Repo-Commit": commit },
        hub,
        undefined,
      );
    }
    notFound(res, "RepoNotFound", `unknown route ${url.pathname}`);
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  hub.url = `http://127.0.0.1:${port}`;
  hub.cdnUrl = `http://localhost:${port}`;
  hub.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return hub;
}
