/**
 * Token pagination for Google list methods (`pageSize`, `pageToken` → `nextPageToken`).
 * A {@link PagePromise} is awaitable for the first page and `for await`-able over every
 * item of every page, the shape openai-node and the Anthropic SDK made familiar.
 */

/** One page of results. */
export interface Page<T> {
  readonly items: readonly T[];
  /** Absent on the last page. */
  readonly nextPageToken: string | undefined;
  hasNextPage(): boolean;
  /** Fetches the following page; rejects when there is none. */
  nextPage(): Promise<Page<T>>;
}

/** Fetches the page that starts at `pageToken` (undefined for the first). */
export type PageFetcher<T> = (pageToken: string | undefined) => Promise<{
  items: readonly T[];
  nextPageToken?: string | undefined;
}>;

class PageImpl<T> implements Page<T> {
  readonly items: readonly T[];
  readonly nextPageToken: string | undefined;
  readonly #fetch: PageFetcher<T>;

  constructor(items: readonly T[], nextPageToken: string | undefined, fetch: PageFetcher<T>) {
    this.items = items;
    this.nextPageToken = nextPageToken || undefined;
    this.#fetch = fetch;
  }

  hasNextPage(): boolean {
    return this.nextPageToken !== undefined;
  }

  async nextPage(): Promise<Page<T>> {
    if (this.nextPageToken === undefined) throw new Error("There is no next page");
    return loadPage(this.#fetch, this.nextPageToken);
  }
}

async function loadPage<T>(fetch: PageFetcher<T>, token: string | undefined): Promise<Page<T>> {
  const result = await fetch(token);
  return new PageImpl(result.items, result.nextPageToken, fetch);
}

/**
 * A lazy list call: nothing is fetched until it is awaited or iterated.
 *
 * @example
 * ```ts
 * const first = await tuner.listModels({ pageSize: 10 });    // one page
 * console.log(first.items.length, first.hasNextPage());
 * for await (const model of tuner.listModels()) console.log(model.name); // every page
 * for await (const page of tuner.listModels().pages()) console.log(page.items.length);
 * ```
 */
export class PagePromise<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  readonly #fetch: PageFetcher<T>;
  readonly #startToken: string | undefined;
  #first: Promise<Page<T>> | undefined;

  constructor(fetch: PageFetcher<T>, startToken?: string) {
    this.#fetch = fetch;
    this.#startToken = startToken;
  }

  #firstPage(): Promise<Page<T>> {
    this.#first ??= loadPage(this.#fetch, this.#startToken);
    return this.#first;
  }

  // biome-ignore lint/suspicious/noThenProperty: a PagePromise is deliberately awaitable.
  then<R1 = Page<T>, R2 = never>(
    onfulfilled?: ((value: Page<T>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#firstPage().then(onfulfilled, onrejected);
  }

  /** Every page, starting with the first, fetched one at a time as the loop advances. */
  async *pages(): AsyncGenerator<Page<T>, void, undefined> {
    let page: Page<T> = await this.#firstPage();
    yield page;
    while (page.hasNextPage()) {
      page = await page.nextPage();
      yield page;
    }
  }

  /** Collects every item of every page (careful with very long lists). */
  async all(): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this) out.push(item);
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    for await (const page of this.pages()) yield* page.items;
  }
}
