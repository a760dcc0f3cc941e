/**
 * `pageSize` / `pageToken` / `nextPageToken` as Google's list methods use them. Tokens are
 * opaque to clients and bound to the request's filter, like the real ones.
 */
import { invalid } from "./http.js";

/** One page of `all`, and the token of the next page when there is one. */
export function pageOf<T>(
  all: readonly T[],
  options: { pageSize?: number | undefined; pageToken?: string | undefined; filter: string },
  defaultSize: number,
  maxSize = 1000,
): { items: T[]; nextPageToken: string | undefined } {
  let pageSize = defaultSize;
  if (options.pageSize !== undefined) {
    if (!Number.isInteger(options.pageSize) || options.pageSize < 0) {
      invalid(`Invalid value for page_size: ${options.pageSize}.`, [
        { field: "page_size", description: "must be a non-negative integer" },
      ]);
    }
    pageSize = options.pageSize === 0 ? defaultSize : Math.min(options.pageSize, maxSize);
  }
  const token = options.pageToken ?? "";
  let offset = 0;
  if (token.length > 0) {
    let decoded: { o?: unknown; f?: unknown } | undefined;
    try {
      decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as typeof decoded;
    } catch {
      decoded = undefined;
    }
    if (decoded === undefined || decoded === null || typeof decoded.o !== "number") {
      invalid("Invalid page token.", [
        { field: "page_token", description: "The page token is not valid." },
      ]);
    }
    if (decoded.f !== options.filter) {
      invalid("The page token does not match the request: send the same filter with page_token.", [
        {
          field: "page_token",
          description: "Request parameters differ from the ones the token was issued for.",
        },
      ]);
    }
    offset = decoded.o;
  }
  const items = all.slice(offset, offset + pageSize);
  const next = offset + pageSize;
  const nextPageToken =
    next < all.length
      ? Buffer.from(JSON.stringify({ o: next, f: options.filter }), "utf8").toString("base64url")
      : undefined;
  return { items, nextPageToken };
}

/** {@link pageOf} with `pageSize` and `pageToken` read from a decoded query. */
export function pageOfQuery<T>(
  all: readonly T[],
  query: Record<string, unknown>,
  filter: string,
  defaultSize: number,
): { items: T[]; nextPageToken: string | undefined } {
  return pageOf(
    all,
    {
      pageSize: typeof query.pageSize === "number" ? query.pageSize : undefined,
      pageToken: typeof query.pageToken === "string" ? query.pageToken : undefined,
      filter,
    },
    defaultSize,
  );
}
