/**
 * Secret scrubbing for everything the HTTP layer hands back to callers: error messages,
 * error details, error causes and log lines. Secrets are registered by the auth provider
 * and replaced with `[REDACTED]` wherever they could surface.
 */

/** The text that replaces a secret. */
export const REDACTED = "[REDACTED]";

/** A set of secret strings and the functions that remove them from values. */
export class Redactor {
  readonly #secrets = new Set<string>();

  /** Registers a secret (values shorter than 4 characters are ignored: too likely to be noise). */
  add(secret: string | undefined): void {
    if (secret && secret.length >= 4) this.#secrets.add(secret);
  }

  /** Replaces every registered secret in `text`, plus any `key=` query parameter value. */
  text(text: string): string {
    let out = text;
    for (const secret of this.#secrets) out = out.split(secret).join(REDACTED);
    // A key may also travel as a query parameter in URLs a server echoes back.
    return out.replace(/([?&](?:key|access_token)=)[^&\s"']+/gi, `$1${REDACTED}`);
  }

  /** Deep-copies a JSON-like value, scrubbing every string in it. */
  value<T>(value: T, depth = 0): T {
    if (typeof value === "string") return this.text(value) as T;
    if (depth > 20 || value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return value.map((item) => this.value(item, depth + 1)) as T;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = this.value(item, depth + 1);
    return out as T;
  }

  /**
   * Rebuilds an error (and its cause chain) as plain `Error`s with scrubbed messages, so
   * a low-level error that captured a secret cannot leak it through `error.cause`.
   */
  error(error: unknown, depth = 0): Error | undefined {
    if (error === undefined || error === null) return undefined;
    if (!(error instanceof Error)) return new Error(this.text(String(error)));
    const cause =
      depth < 5 ? this.error((error as { cause?: unknown }).cause, depth + 1) : undefined;
    const copy = new Error(this.text(error.message), cause ? { cause } : undefined);
    copy.name = error.name;
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" || typeof code === "number") {
      Object.defineProperty(copy, "code", { value: code, enumerable: true });
    }
    if (error.stack) copy.stack = this.text(error.stack);
    return copy;
  }
}
