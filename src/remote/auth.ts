/**
 * Credentials for Google REST APIs: an API key (sent only in `x-goog-api-key`) or an OAuth
 * access token (sent as `Authorization: Bearer …`, with `x-goog-user-project` naming the
 * quota project). The secrets live in private fields, so `util.inspect`, `console.log` and
 * `JSON.stringify` of an auth object never show them.
 */
import { InvalidOptionError } from "../core/errors.js";
import type { Redactor } from "./redact.js";

/** Where an access token comes from: a fixed string or a function called before each request. */
export type AccessTokenProvider =
  | string
  | (() => string | Promise<string> | { token: string } | Promise<{ token: string }>);

/** Supplies the auth headers of one request. */
export interface AuthProvider {
  /** A short, secret-free description for logs (`"api key"`, `"oauth"`). */
  readonly kind: string;
  headers(signal?: AbortSignal): Promise<Record<string, string>>;
  /** Registers the secrets this provider sends, so errors and logs can scrub them. */
  registerSecrets(redactor: Redactor): void;
}

/** Sends an API key in the `x-goog-api-key` header and nowhere else. */
export class ApiKeyAuth implements AuthProvider {
  readonly kind = "api key";
  readonly #key: string;

  constructor(apiKey: string) {
    if (typeof apiKey !== "string" || apiKey.trim() === "") {
      throw new InvalidOptionError("apiKey", "apiKey must be a non-empty string");
    }
    this.#key = apiKey.trim();
  }

  async headers(): Promise<Record<string, string>> {
    return { "x-goog-api-key": this.#key };
  }

  registerSecrets(redactor: Redactor): void {
    redactor.add(this.#key);
  }

  toJSON(): Record<string, string> {
    return { kind: this.kind };
  }
}

/**
 * Sends `Authorization: Bearer <token>` and, when given, `x-goog-user-project`. The provider
 * is called before every request, so a function that refreshes tokens (e.g. google-auth-library's
 * `client.getAccessToken()`) keeps long polls working.
 *
 * @example
 * ```ts
 * const auth = new AccessTokenAuth(async () => (await client.getAccessToken()).token!, "my-project");
 * ```
 */
export class AccessTokenAuth implements AuthProvider {
  readonly kind = "oauth";
  readonly #provider: AccessTokenProvider;
  readonly #quotaProject: string | undefined;
  #redactor: Redactor | undefined;

  constructor(provider: AccessTokenProvider, quotaProject?: string) {
    if (typeof provider !== "string" && typeof provider !== "function") {
      throw new InvalidOptionError("accessToken", "accessToken must be a string or a function");
    }
    this.#provider = provider;
    this.#quotaProject = quotaProject;
  }

  async headers(): Promise<Record<string, string>> {
    const raw = typeof this.#provider === "string" ? this.#provider : await this.#provider();
    const token = typeof raw === "string" ? raw : raw?.token;
    if (typeof token !== "string" || token === "") {
      throw new InvalidOptionError("accessToken", "The access token provider returned no token");
    }
    this.#redactor?.add(token);
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (this.#quotaProject) headers["x-goog-user-project"] = this.#quotaProject;
    return headers;
  }

  registerSecrets(redactor: Redactor): void {
    this.#redactor = redactor;
    if (typeof this.#provider === "string") redactor.add(this.#provider);
  }

  toJSON(): Record<string, string | undefined> {
    return { kind: this.kind, quotaProject: this.#quotaProject };
  }
}
