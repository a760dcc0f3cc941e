/**
 * @internal The Cloud Storage JSON API's uploads: a single-request media upload
 * (`uploadType=media`) and resumable sessions (`uploadType=resumable`, then `PUT` chunks).
 */
import { fail, invalid, isRecord, type Reply } from "../shared/http.js";
import type { FakeStorageObject, VertexFake } from "./state.js";

/** A resumable upload in progress. */
export interface UploadSession {
  bucket: string;
  name: string;
  contentType: string;
  parts: Buffer[];
  received: number;
  object: FakeStorageObject | undefined;
}

/** The Cloud Storage objects and upload sessions of one fake. */
export class FakeStorage {
  readonly #fake: VertexFake;
  readonly #sessions = new Map<string, UploadSession>();

  constructor(fake: VertexFake) {
    this.#fake = fake;
  }

  clear(): void {
    this.#sessions.clear();
  }

  /** `POST …/o?uploadType=media` stores the body; `uploadType=resumable` opens a session. */
  upload(bucket: string, url: URL, headers: Record<string, string>, body: string): Reply {
    const query = url.searchParams;
    const uploadType = query.get("uploadType");
    if (uploadType !== "media" && uploadType !== "resumable") {
      invalid(
        uploadType === null
          ? "Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/"
          : `The fake Cloud Storage serves uploadType=media and uploadType=resumable, not ${uploadType}.`,
      );
    }
    let name = query.get("name") ?? undefined;
    if (uploadType === "resumable" && body.trim().length > 0) {
      let metadata: unknown;
      try {
        metadata = JSON.parse(body);
      } catch (error) {
        invalid(
          `Invalid JSON payload received. ${error instanceof Error ? error.message : ""}`.trim(),
        );
      }
      if (isRecord(metadata) && typeof metadata.name === "string") name ??= metadata.name;
    }
    if (name === undefined || name.length === 0) invalid("Required parameter: name");
    const buckets = this.#fake.settings.buckets;
    if (buckets !== undefined && !buckets.includes(bucket)) {
      fail("NOT_FOUND", "The specified bucket does not exist.");
    }
    if (uploadType === "resumable") {
      const id = `ADPycd${this.#fake.newId()}`;
      this.#sessions.set(id, {
        bucket,
        name,
        contentType: headers["x-upload-content-type"] ?? "application/octet-stream",
        parts: [],
        received: 0,
        object: undefined,
      });
      const location = new URL(url.href);
      location.search = "";
      location.searchParams.set("uploadType", "resumable");
      location.searchParams.set("name", name);
      location.searchParams.set("upload_id", id);
      return { status: 200, body: {}, headers: { location: location.href } };
    }
    const object = this.store(
      bucket,
      name,
      body,
      headers["content-type"] ?? "application/octet-stream",
    );
    return { status: 200, body: objectJson(object) };
  }

  /**
   * `PUT …?upload_id=` of a resumable session. `Content-Range: bytes a-b/total|*` appends a
   * chunk (non-final chunks must be multiples of 256 KiB, and start where the session ends);
   * `bytes *\/total|*` asks for the status. Answers 308 with `Range: bytes=0-N` until the last
   * byte arrives, then 200 with the object.
   */
  uploadChunk(
    bucket: string,
    query: URLSearchParams,
    headers: Record<string, string>,
    bytes: Uint8Array,
  ): Reply {
    const id = query.get("upload_id") ?? "";
    const session = this.#sessions.get(id);
    if (session === undefined || session.bucket !== bucket) {
      fail("NOT_FOUND", "No such upload session.");
    }
    const range = headers["content-range"] ?? "";
    const status = (): Reply =>
      session.object
        ? { status: 200, body: objectJson(session.object) }
        : {
            status: 308,
            body: {},
            headers: session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {},
          };
    const statusQuery = /^bytes \*\/(\d+|\*)$/.exec(range);
    if (statusQuery) {
      if (
        statusQuery[1] !== "*" &&
        Number(statusQuery[1]) === session.received &&
        !session.object
      ) {
        this.#finishSession(session);
      }
      return status();
    }
    const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
    if (!match) invalid(`Invalid Content-Range header: ${JSON.stringify(range)}`);
    const start = Number(match[1]);
    const end = Number(match[2]);
    const total = match[3] === "*" ? undefined : Number(match[3]);
    if (end - start + 1 !== bytes.byteLength) {
      invalid(`Content-Range ${range} does not match the ${bytes.byteLength} bytes sent.`);
    }
    if (session.object) return status();
    if (start > session.received) {
      invalid(`The chunk starts at ${start}, but the session holds ${session.received} bytes.`);
    }
    if (total === undefined && bytes.byteLength % (256 * 1024) !== 0) {
      invalid("Non-final chunks must be a multiple of 256 KiB (262144 bytes).");
    }
    // Bytes the session already holds (a resend) are skipped.
    const fresh = Buffer.from(bytes).subarray(session.received - start);
    session.parts.push(fresh);
    session.received += fresh.byteLength;
    if (total !== undefined && session.received >= total) this.#finishSession(session);
    return status();
  }

  #finishSession(session: UploadSession): void {
    const text = Buffer.concat(session.parts).toString("utf8");
    session.object = this.store(session.bucket, session.name, text, session.contentType);
    session.parts = [];
  }

  /** Stores an object (replacing one of the same name). */
  store(bucket: string, name: string, text: string, contentType: string): FakeStorageObject {
    const objects = this.#fake.objects;
    const object: FakeStorageObject = {
      bucket,
      name,
      contentType,
      text,
      size: Buffer.byteLength(text, "utf8"),
      generation: String(this.#fake.clock.now() * 1000 + objects.size),
      timeCreated: this.#fake.clock.iso(),
    };
    objects.set(`gs://${bucket}/${name}`, object);
    return object;
  }
}

/** The `storage#object` resource of `object`. */
export function objectJson(object: FakeStorageObject): Record<string, unknown> {
  const id = `${object.bucket}/${object.name}/${object.generation}`;
  return {
    kind: "storage#object",
    id,
    selfLink: `https://www.googleapis.com/storage/v1/b/${object.bucket}/o/${encodeURIComponent(object.name)}`,
    name: object.name,
    bucket: object.bucket,
    generation: object.generation,
    metageneration: "1",
    contentType: object.contentType,
    storageClass: "STANDARD",
    size: String(object.size),
    timeCreated: object.timeCreated,
    updated: object.timeCreated,
  };
}
