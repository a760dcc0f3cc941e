/**
 * Application Default Credentials through `google-auth-library`, loaded on first use only, so
 * code that passes its own access token (or an API key) never loads it.
 */
import { InvalidOptionError, TunekitError } from "../core/errors.js";
import type { AuthProvider } from "./auth.js";
import type { Redactor } from "./redact.js";

/** The OAuth scope Vertex AI and Cloud Storage calls need. */
export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

/** The part of google-auth-library's `GoogleAuth` tunekit uses. */
export interface GoogleAuthLike {
  getAccessToken(): Promise<string | null | undefined>;
}

/** Options of {@link AdcAuth}. */
export interface AdcAuthOptions {
  /** @default [CLOUD_PLATFORM_SCOPE] */
  scopes?: readonly string[];
  /** A service-account key file instead of the ADC search (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud, metadata server). */
  keyFilename?: string;
  /** Sent as `x-goog-user-project` (quota project). */
  quotaProject?: string;
  /** Supplies the auth object instead of `new GoogleAuth(...)` (tests, custom clients). */
  googleAuth?: GoogleAuthLike;
}

/**
 * Bearer tokens from Application Default Credentials. google-auth-library caches and refreshes
 * the token; it is asked before every request.
 */
export class AdcAuth implements AuthProvider {
  readonly kind = "adc";
  readonly #options: AdcAuthOptions;
  #auth: Promise<GoogleAuthLike> | undefined;
  #redactor: Redactor | undefined;

  constructor(options: AdcAuthOptions = {}) {
    this.#options = options;
  }

  async headers(): Promise<Record<string, string>> {
    let token: string | null | undefined;
    try {
      const auth = await this.#load();
      token = await auth.getAccessToken();
    } catch (error) {
      if (error instanceof TunekitError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new InvalidOptionError(
        "credentials",
        `Could not get an access token from Application Default Credentials: ${this.#redactor?.text(message) ?? message}`,
        {
          cause: error,
          hint: "Run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or pass { accessToken }",
        },
      );
    }
    if (typeof token !== "string" || token === "") {
      throw new InvalidOptionError(
        "credentials",
        "Application Default Credentials returned no access token",
        { hint: "Run `gcloud auth application-default login`, or pass { accessToken }" },
      );
    }
    this.#redactor?.add(token);
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (this.#options.quotaProject) headers["x-goog-user-project"] = this.#options.quotaProject;
    return headers;
  }

  registerSecrets(redactor: Redactor): void {
    this.#redactor = redactor;
  }

  toJSON(): Record<string, string | undefined> {
    return { kind: this.kind, quotaProject: this.#options.quotaProject };
  }

  #load(): Promise<GoogleAuthLike> {
    this.#auth ??= (async () => {
      if (this.#options.googleAuth) return this.#options.googleAuth;
      let module: typeof import("google-auth-library");
      try {
        module = await import("google-auth-library");
      } catch (error) {
        throw new InvalidOptionError(
          "credentials",
          'Application Default Credentials need the package "google-auth-library" (10.x), which could not be loaded',
          {
            cause: error,
            hint: "Install it (`npm i google-auth-library@10`), or pass { accessToken }",
          },
        );
      }
      const GoogleAuth =
        module.GoogleAuth ??
        (module as unknown as { default: typeof import("google-auth-library") }).default.GoogleAuth;
      return new GoogleAuth({
        scopes: [...(this.#options.scopes ?? [CLOUD_PLATFORM_SCOPE])],
        ...(this.#options.keyFilename ? { keyFilename: this.#options.keyFilename } : {}),
      });
    })();
    // A failed load is retried on the next request rather than cached.
    this.#auth.catch(() => {
      this.#auth = undefined;
    });
    return this.#auth;
  }
}
