import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AbortedError,
  ConnectionError,
  InvalidOptionError,
  InvalidResponseError,
  ModelLoadError,
  NotFoundError,
} from "../../../src/core/errors.js";
import {
  hfHome,
  hubCacheDir,
  hubEndpoint,
  hubToken,
  isOffline,
  type ModelDownloadEvent,
  normalizeEtag,
  parseModelSpec,
  type ResolvedModel,
  type ResolveModelOptions,
  repoFolderName,
  resolveModel,
} from "../../../src/local/hub/index.js";
import { type FakeHub, gitBlobSha1, isLfs, sha256, startFakeHub } from "./fake-hub.js";

const commit = (label: string) => createHash("sha1").update(label).digest("hex");
const C_MAIN = commit("main");
const C_V1 = commit("v1");
const C_SHARDED = commit("sharded");

const json = (value: unknown) => Buffer.from(JSON.stringify(value, null, 2));
const TOKENIZER = json({ version: "1.0", model: { type: "BPE", vocab: { a: 0 } } });
const BIG = randomBytes(1024 * 1024 + 17);
const OLD_WEIGHTS = randomBytes(4096);
const SHARD1 = randomBytes(300_000);
const SHARD2 = randomBytes(200_000);

const MAIN_FILES: Record<string, Buffer> = {
  "config.json": json({ model_type: "llama", hidden_size: 64 }),
  "generation_config.json": json({ eos_token_id: 2 }),
  "tokenizer.json": TOKENIZER,
  "tokenizer_config.json": json({ bos_token: "<s>", eos_token: "</s>" }),
  "special_tokens_map.json": json({ bos_token: "<s>" }),
  "chat_template.jinja": Buffer.from("{% for m in messages %}{{ m.content }}{% endfor %}"),
  "model.safetensors": BIG,
  "README.md": Buffer.from("# tiny\n"),
  "pytorch_model.bin": randomBytes(100),
  "onnx/model.onnx": randomBytes(100),
};
const NEEDED = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "chat_template.jinja",
  "special_tokens_map.json",
  "model.safetensors",
];

let hub: FakeHub;
let cacheDir: string;
let scratch: string;

beforeAll(async () => {
  hub = await startFakeHub({
    "tiny-org/tiny-llama": {
      refs: { main: C_MAIN, v1: C_V1 },
      commits: {
        [C_MAIN]: MAIN_FILES,
        [C_V1]: {
          "config.json": json({ model_type: "llama", hidden_size: 32 }),
          "tokenizer.json": TOKENIZER,
          "model.safetensors": OLD_WEIGHTS,
        },
      },
    },
    "tiny-org/sharded": {
      refs: { main: C_SHARDED },
      commits: {
        [C_SHARDED]: {
          "config.json": json({ model_type: "qwen2" }),
          "tokenizer.json": TOKENIZER,
          "model.safetensors.index.json": json({
            metadata: { total_size: 1 },
            weight_map: {
              "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
              "lm_head.weight": "model-00002-of-00002.safetensors",
            },
          }),
          "model-00001-of-00002.safetensors": SHARD1,
          "model-00002-of-00002.safetensors": SHARD2,
          "consolidated.safetensors": randomBytes(1000),
        },
      },
    },
    "tiny-org/gguf-only": {
      refs: { main: commit("gguf") },
      commits: {
        [commit("gguf")]: { "config.json": json({}), "tiny.Q4_K_M.gguf": randomBytes(10) },
      },
    },
  });
});

afterAll(async () => {
  await hub.close();
});

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), "tunekit-hub-"));
  cacheDir = join(scratch, "hub");
  hub.requests.length = 0;
  hub.stall = undefined;
  hub.ignoreRange = false;
});

afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** resolveModel for a hub id, narrowed to the hub variant. */
async function fromHub(
  spec: string,
  options: ResolveModelOptions,
): Promise<ResolvedModel & { kind: "hub" }> {
  const model = await resolveModel(spec, options);
  if (model.kind !== "hub") throw new Error(`expected a hub model, got ${model.kind}`);
  return model;
}

const base = () => ({ cacheDir, endpoint: hub.url, env: {} });
const etagOf = (path: string, data: Buffer) => (isLfs(path) ? sha256(data) : gitBlobSha1(data));

/** Every path under `dir`, relative, with symlink targets: a picture of the layout. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const full = join(dir, name);
    const info = await lstat(full);
    if (info.isSymbolicLink()) out.push(`${prefix}${name} -> ${await readlink(full)}`);
    else if (info.isDirectory())
      out.push(`${prefix}${name}/`, ...(await tree(full, `${prefix}${name}/`)));
    else out.push(`${prefix}${name}`);
  }
  return out;
}

/** The layout Python's huggingface_hub writes for `files` of `repo` at `rev` → `sha`. */
function pythonLayout(rev: string, sha: string, files: Record<string, Buffer>): string[] {
  const blobs = [...new Set(Object.entries(files).map(([p, d]) => etagOf(p, d)))].sort();
  const links = Object.entries(files)
    .map(([p, d]) => `snapshots/${sha}/${p} -> ../../blobs/${etagOf(p, d)}`)
    .sort();
  return [
    "blobs/",
    ...blobs.map((b) => `blobs/${b}`),
    ...(rev === sha ? [] : ["refs/", `refs/${rev}`]),
    "snapshots/",
    `snapshots/${sha}/`,
    ...links,
  ];
}

const pick = (files: Record<string, Buffer>, names: string[]) =>
  Object.fromEntries(names.map((n) => [n, files[n] as Buffer]));

describe("hub cache location and settings (Python's rules)", () => {
  it("reads HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache", () => {
    expect(hubCacheDir({ HF_HUB_CACHE: "/x/cache", HF_HOME: "/y" })).toBe("/x/cache");
    expect(hubCacheDir({ HUGGINGFACE_HUB_CACHE: "/legacy" })).toBe("/legacy");
    expect(hubCacheDir({ HF_HOME: "/y" })).toBe("/y/hub");
    expect(hubCacheDir({ XDG_CACHE_HOME: "/xdg" })).toBe("/xdg/huggingface/hub");
    expect(hubCacheDir({})).toMatch(/\.cache\/huggingface\/hub$/);
    expect(hfHome({ HF_HOME: "~/hf" })).not.toContain("~");
  });

  it("reads HF_HUB_OFFLINE like Python and HF_ENDPOINT", () => {
    for (const v of ["1", "ON", "yes", "True"]) expect(isOffline({ HF_HUB_OFFLINE: v })).toBe(true);
    for (const v of ["0", "", "off", undefined])
      expect(isOffline({ HF_HUB_OFFLINE: v })).toBe(false);
    expect(isOffline({ TRANSFORMERS_OFFLINE: "1" })).toBe(true);
    expect(isOffline({ HF_HUB_OFFLINE: "0", TRANSFORMERS_OFFLINE: "1" })).toBe(false);
    expect(hubEndpoint({ HF_ENDPOINT: "http://mirror:8080/" })).toBe("http://mirror:8080");
    expect(hubEndpoint({})).toBe("https://huggingface.co");
  });

  it("finds the token in HF_TOKEN, then the token file of huggingface-cli login", async () => {
    expect(await hubToken({ HF_TOKEN: "hf_env", HF_HOME: scratch })).toBe("hf_env");
    await writeFile(join(scratch, "token"), "hf_file\n");
    expect(await hubToken({ HF_HOME: scratch })).toBe("hf_file");
    expect(await hubToken({ HF_HOME: join(scratch, "none") })).toBeUndefined();
  });

  it("names repository folders and blobs like Python", () => {
    expect(repoFolderName("HuggingFaceTB/SmolLM2-135M")).toBe(
      "models--HuggingFaceTB--SmolLM2-135M",
    );
    expect(normalizeEtag('W/"abc"')).toBe("abc");
    expect(normalizeEtag('"abc"')).toBe("abc");
  });
});

describe("parseModelSpec", () => {
  it("tells hub ids from paths", () => {
    expect(parseModelSpec("org/name")).toEqual({
      kind: "hub",
      repo: "org/name",
      revision: undefined,
    });
    expect(parseModelSpec("org/name@v1.0")).toEqual({
      kind: "hub",
      repo: "org/name",
      revision: "v1.0",
    });
    expect(parseModelSpec("org/name@refs/pr/1")).toEqual({
      kind: "hub",
      repo: "org/name",
      revision: "refs/pr/1",
    });
    expect(parseModelSpec("./org/name").kind).toBe("path");
    expect(parseModelSpec("/models/x").kind).toBe("path");
    expect(parseModelSpec("~/m").kind).toBe("path");
    expect(parseModelSpec("a/b/c").kind).toBe("path");
    expect(parseModelSpec("org/model.gguf").kind).toBe("path");
    expect(parseModelSpec("org--x/name").kind).toBe("path");
  });
});

describe("resolveModel from the hub", () => {
  it("writes the cache exactly as Python's huggingface_hub does, only the files a model needs", async () => {
    const events: ModelDownloadEvent[] = [];
    const model = await fromHub("tiny-org/tiny-llama", {
      ...base(),
      onProgress: (e) => events.push(e),
    });
    const root = join(cacheDir, "models--tiny-org--tiny-llama");
    expect(model).toMatchObject({
      kind: "hub",
      path: join(root, "snapshots", C_MAIN),
      repo: "tiny-org/tiny-llama",
      revision: "main",
      commit: C_MAIN,
      fromCache: false,
      weights: ["model.safetensors"],
    });
    // Python keeps its lock files in <cache>/.locks/<repo folder>/ too; tunekit removes its own.
    expect((await readdir(cacheDir)).sort()).toEqual([".locks", "models--tiny-org--tiny-llama"]);
    expect(await readdir(join(cacheDir, ".locks", "models--tiny-org--tiny-llama"))).toEqual([]);
    expect(await tree(root)).toEqual(pythonLayout("main", C_MAIN, pick(MAIN_FILES, NEEDED)));
    expect(await readFile(join(root, "refs", "main"), "utf8")).toBe(C_MAIN); // no newline
    for (const name of NEEDED) {
      expect(sha256(await readFile(join(model.path, name)))).toBe(
        sha256(MAIN_FILES[name] as Buffer),
      );
    }
    // Progress: one "resolved", bytes per file, one "file-done" per file.
    expect(events[0]).toMatchObject({ type: "resolved", commit: C_MAIN, fromCache: false });
    const done = events.filter((e) => e.type === "file-done").map((e) => e.file);
    expect(done.sort()).toEqual([...NEEDED].sort());
    const big = events.filter((e) => e.type === "file-progress" && e.file === "model.safetensors");
    expect(big.length).toBeGreaterThan(2);
    expect(big.at(-1)).toMatchObject({ bytes: BIG.length, totalBytes: BIG.length });
    // Files the model does not need were never fetched.
    expect(hub.requests.some((r) => /README|pytorch_model|onnx/.test(r.path))).toBe(false);
  });

  it("honours HF_HOME, HF_ENDPOINT and HF_TOKEN from the environment", async () => {
    const env = { HF_HOME: join(scratch, "home"), HF_ENDPOINT: hub.url, HF_TOKEN: "hf_secret" };
    const model = await fromHub("tiny-org/tiny-llama", { env });
    expect(model.path).toBe(
      join(scratch, "home", "hub", "models--tiny-org--tiny-llama", "snapshots", C_MAIN),
    );
    expect(hub.requests.length).toBeGreaterThan(0);
    const [toCdn, toHub] = [
      hub.requests.filter((r) => r.path.startsWith("/cdn/")),
      hub.requests.filter((r) => !r.path.startsWith("/cdn/")),
    ];
    expect(toHub.every((r) => r.authorization === "Bearer hf_secret")).toBe(true);
    // The token never leaves the hub's origin.
    expect(toCdn.length).toBeGreaterThan(0);
    expect(toCdn.every((r) => r.authorization === undefined)).toBe(true);
  });

  it("reuses what is cached: a second run downloads nothing", async () => {
    await resolveModel("tiny-org/tiny-llama", base());
    hub.requests.length = 0;
    const events: ModelDownloadEvent[] = [];
    const again = await fromHub("tiny-org/tiny-llama", {
      ...base(),
      onProgress: (e) => events.push(e),
    });
    expect(again.commit).toBe(C_MAIN);
    expect(hub.requests.map((r) => r.path)).toEqual([
      `/api/models/tiny-org/tiny-llama/revision/main`,
    ]);
    expect(events.filter((e) => e.type === "file-done").every((e) => e.cached)).toBe(true);
  });

  it("reuses a cache written by Python (offline: no request at all)", async () => {
    // Lay the files out by hand, the way huggingface_hub.snapshot_download leaves them.
    const root = join(cacheDir, "models--tiny-org--tiny-llama");
    await mkdir(join(root, "blobs"), { recursive: true });
    await mkdir(join(root, "refs"), { recursive: true });
    await mkdir(join(root, "snapshots", C_MAIN), { recursive: true });
    await writeFile(join(root, "refs", "main"), C_MAIN);
    for (const name of ["config.json", "tokenizer.json", "model.safetensors"]) {
      const data = MAIN_FILES[name] as Buffer;
      const etag = etagOf(name, data);
      await writeFile(join(root, "blobs", etag), data);
      await symlink(`../../blobs/${etag}`, join(root, "snapshots", C_MAIN, name));
    }
    const model = await fromHub("tiny-org/tiny-llama", {
      cacheDir,
      endpoint: hub.url,
      env: { HF_HUB_OFFLINE: "1" },
    });
    expect(model).toMatchObject({ kind: "hub", commit: C_MAIN, fromCache: true });
    expect(hub.requests).toEqual([]);

    // Online, the files Python already has are not downloaded again.
    await resolveModel("tiny-org/tiny-llama", base());
    const fetched = hub.requests.filter((r) => r.method !== "HEAD").map((r) => r.path);
    expect(fetched.some((p) => p.endsWith("/config.json") || p.includes(sha256(BIG)))).toBe(false);
  });

  it("offline mode with nothing cached fails clearly and sends nothing", async () => {
    const error = await resolveModel("tiny-org/tiny-llama", {
      ...base(),
      env: { HF_HUB_OFFLINE: "true" },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as ModelLoadError).message).toMatch(/HF_HUB_OFFLINE/);
    expect((error as ModelLoadError).message).toContain("tiny-org/tiny-llama@main");
    expect((error as ModelLoadError).path).toBe(join(cacheDir, "models--tiny-org--tiny-llama"));
    expect(hub.requests).toEqual([]);
  });

  it("offline mode refuses a snapshot that lacks weights", async () => {
    await resolveModel("tiny-org/tiny-llama", base());
    const root = join(cacheDir, "models--tiny-org--tiny-llama");
    await rm(join(root, "blobs", sha256(BIG))); // leaves a dangling link
    await expect(resolveModel("tiny-org/tiny-llama", { ...base(), offline: true })).rejects.toThrow(
      /lacks \*\.safetensors/,
    );
  });

  it("pins a revision: a tag writes refs/<tag>, a commit hash writes no ref", async () => {
    const tagged = await fromHub("tiny-org/tiny-llama@v1", base());
    const root = join(cacheDir, "models--tiny-org--tiny-llama");
    expect(tagged).toMatchObject({
      revision: "v1",
      commit: C_V1,
      path: join(root, "snapshots", C_V1),
    });
    expect(await readFile(join(root, "refs", "v1"), "utf8")).toBe(C_V1);
    expect(sha256(await readFile(join(tagged.path, "model.safetensors")))).toBe(
      sha256(OLD_WEIGHTS),
    );
    expect(hub.requests[0]?.path).toBe("/api/models/tiny-org/tiny-llama/revision/v1");

    await rm(cacheDir, { recursive: true });
    const pinned = await fromHub("tiny-org/tiny-llama", { ...base(), revision: C_V1 });
    expect(pinned.path).toBe(join(root, "snapshots", C_V1));
    expect(await tree(root)).toEqual(
      pythonLayout(C_V1, C_V1, {
        "config.json": json({ model_type: "llama", hidden_size: 32 }),
        "tokenizer.json": TOKENIZER,
        "model.safetensors": OLD_WEIGHTS,
      }),
    );
    // A pinned commit that is fully cached needs no network.
    hub.requests.length = 0;
    await fromHub(`tiny-org/tiny-llama@${C_V1}`, base());
    expect(hub.requests).toEqual([]);
    // Offline, the pinned tag resolves through refs/v1.
    await resolveModel("tiny-org/tiny-llama@v1", base());
    hub.requests.length = 0;
    const offline = await fromHub("tiny-org/tiny-llama@v1", { ...base(), offline: true });
    expect(offline.commit).toBe(C_V1);
    expect(hub.requests).toEqual([]);
  });

  it("shares blobs between revisions (same content, one blob)", async () => {
    await resolveModel("tiny-org/tiny-llama", base());
    hub.requests.length = 0;
    await resolveModel("tiny-org/tiny-llama@v1", base());
    // tokenizer.json is identical in both commits: only its metadata was asked for.
    const tokenizerRequests = hub.requests.filter((r) => r.path.endsWith("/tokenizer.json"));
    expect(tokenizerRequests.map((r) => r.method)).toEqual(["HEAD"]);
    const root = join(cacheDir, "models--tiny-org--tiny-llama");
    expect(await readlink(join(root, "snapshots", C_V1, "tokenizer.json"))).toBe(
      await readlink(join(root, "snapshots", C_MAIN, "tokenizer.json")),
    );
  });

  it("stores a revision with slashes as Python does (refs/refs/pr/1)", async () => {
    // The fake hub knows "refs/pr/1" only through the commit it points to.
    const model = await fromHub(`tiny-org/tiny-llama@${C_V1}`, base());
    expect(model.commit).toBe(C_V1);
    const { writeRef, repoCachePaths, readRef } = await import("../../../src/local/hub/cache.js");
    const paths = repoCachePaths(cacheDir, "tiny-org/tiny-llama");
    await writeRef(paths, "refs/pr/1", C_V1);
    expect(await readFile(join(paths.refs, "refs", "pr", "1"), "utf8")).toBe(C_V1);
    expect(await readRef(paths, "refs/pr/1")).toBe(C_V1);
    await expect(writeRef(paths, "../../escape", C_V1)).rejects.toThrow(/escapes/);
  });

  it("an already aborted signal sends nothing", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      resolveModel("tiny-org/tiny-llama", { ...base(), signal: controller.signal }),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(hub.requests).toEqual([]);
  });

  it("rejects a revision given twice", async () => {
    await expect(
      resolveModel("tiny-org/tiny-llama@v1", { ...base(), revision: "main" }),
    ).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it("downloads the shards an index names, not Mistral's consolidated copy", async () => {
    const model = await fromHub("tiny-org/sharded", base());
    expect(model.weights).toEqual([
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ]);
    expect((await readdir(model.path)).sort()).toEqual([
      "config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "tokenizer.json",
    ]);
    expect(hub.requests.some((r) => r.path.includes("consolidated"))).toBe(false);
  });

  it("maps hub failures to typed errors", async () => {
    const missing = await resolveModel("tiny-org/missing", base()).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).httpStatus).toBe(404);
    expect((missing as Error).message).toMatch(/no local directory .*tiny-org\/missing/);
    await expect(resolveModel("tiny-org/tiny-llama@nope", base())).rejects.toBeInstanceOf(
      NotFoundError,
    );
    const gguf = await resolveModel("tiny-org/gguf-only", base()).catch((e: unknown) => e);
    expect(gguf).toBeInstanceOf(ModelLoadError);
    expect(String((gguf as Error).message)).toMatch(/no safetensors weights.*tiny\.Q4_K_M\.gguf/);
  });

  it("falls back to the cache when the hub is unreachable, else throws ConnectionError", async () => {
    const dead = "http://127.0.0.1:9"; // discard port: connection refused
    await expect(
      resolveModel("tiny-org/tiny-llama", { cacheDir, endpoint: dead, env: {} }),
    ).rejects.toBeInstanceOf(ConnectionError);
    await resolveModel("tiny-org/tiny-llama", base());
    const events: ModelDownloadEvent[] = [];
    const model = await fromHub("tiny-org/tiny-llama", {
      cacheDir,
      endpoint: dead,
      env: {},
      onProgress: (e) => events.push(e),
    });
    expect(model.fromCache).toBe(true);
    expect(events[0]).toMatchObject({ type: "warning" });
  });
});

describe("interrupted downloads", () => {
  const blobDir = () => join(cacheDir, "models--tiny-org--tiny-llama", "blobs");
  const bigBlob = () => join(blobDir(), sha256(BIG));

  async function abortMidway(): Promise<number> {
    hub.stall = { sha256: sha256(BIG), afterBytes: 600_000 };
    const controller = new AbortController();
    const error = await resolveModel("tiny-org/tiny-llama", {
      ...base(),
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === "file-progress" && e.file === "model.safetensors") controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortedError);
    // No blob under its final name, no snapshot link: nothing looks complete.
    await expect(stat(bigBlob())).rejects.toThrow();
    await expect(
      lstat(
        join(cacheDir, "models--tiny-org--tiny-llama", "snapshots", C_MAIN, "model.safetensors"),
      ),
    ).rejects.toThrow();
    const partial = (await stat(`${bigBlob()}.incomplete`)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(BIG.length);
    hub.stall = undefined;
    return partial;
  }

  it("abort leaves only a .incomplete file, and the next run resumes it with a Range request", async () => {
    const partial = await abortMidway();
    hub.requests.length = 0;
    const events: ModelDownloadEvent[] = [];
    const model = await fromHub("tiny-org/tiny-llama", {
      ...base(),
      onProgress: (e) => events.push(e),
    });
    const cdn = hub.requests.filter(
      (r) => r.path === `/cdn/${sha256(BIG)}` && r.range !== "bytes=0-0",
    );
    expect(cdn.map((r) => r.range)).toEqual([`bytes=${partial}-`]);
    expect(events).toContainEqual({
      type: "file-start",
      file: "model.safetensors",
      totalBytes: BIG.length,
      resumedFrom: partial,
    });
    expect(sha256(await readFile(join(model.path, "model.safetensors")))).toBe(sha256(BIG));
    expect((await readdir(blobDir())).filter((n) => n.includes("."))).toEqual([]);
  });

  it("restarts from byte 0 when the server ignores Range", async () => {
    await abortMidway();
    hub.ignoreRange = true;
    const model = await fromHub("tiny-org/tiny-llama", base());
    expect(sha256(await readFile(join(model.path, "model.safetensors")))).toBe(sha256(BIG));
  });

  it("a corrupt partial file is detected by sha256 and thrown away, never renamed", async () => {
    await mkdir(blobDir(), { recursive: true });
    await writeFile(`${bigBlob()}.incomplete`, randomBytes(1000));
    const error = await resolveModel("tiny-org/tiny-llama", base()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect((error as Error).message).toMatch(/corrupt: sha256/);
    await expect(stat(bigBlob())).rejects.toThrow();
    await expect(stat(`${bigBlob()}.incomplete`)).rejects.toThrow();
    const model = await fromHub("tiny-org/tiny-llama", base());
    expect(sha256(await readFile(join(model.path, "model.safetensors")))).toBe(sha256(BIG));
  });
});

describe("two processes, one blob", () => {
  const lockPath = () =>
    join(cacheDir, ".locks", "models--tiny-org--tiny-llama", `${sha256(BIG)}.tunekit.lock`);

  it("waits while another live process holds the blob's lock, then uses its blob", async () => {
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"]);
    try {
      await mkdir(dirname(lockPath()), { recursive: true });
      await writeFile(lockPath(), `${other.pid}\n`);
      let done = false;
      const pending = fromHub("tiny-org/tiny-llama", base()).then((m) => {
        done = true;
        return m;
      });
      await new Promise((r) => setTimeout(r, 600));
      expect(done).toBe(false);
      // The "other process" finishes: its blob appears, its lock goes.
      const blobs = join(cacheDir, "models--tiny-org--tiny-llama", "blobs");
      await mkdir(blobs, { recursive: true });
      await writeFile(join(blobs, sha256(BIG)), BIG);
      await rm(lockPath());
      const model = await pending;
      expect(sha256(await readFile(join(model.path, "model.safetensors")))).toBe(sha256(BIG));
      expect(hub.requests.some((r) => r.path.startsWith("/cdn/") && r.method === "GET")).toBe(
        false,
      );
    } finally {
      other.kill();
    }
  });

  it("takes over a lock left by a process that is gone", async () => {
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => dead.on("exit", r));
    await mkdir(dirname(lockPath()), { recursive: true });
    await writeFile(lockPath(), `${dead.pid}\n`);
    const model = await fromHub("tiny-org/tiny-llama", base());
    expect(sha256(await readFile(join(model.path, "model.safetensors")))).toBe(sha256(BIG));
    await expect(stat(lockPath())).rejects.toThrow();
  });
});

describe("resolveModel from disk", () => {
  it("accepts a model directory and names what a broken one lacks", async () => {
    const fixture = join(import.meta.dirname, "../../fixtures/models/llama-tied-gqa");
    await expect(resolveModel(fixture)).resolves.toMatchObject({
      kind: "directory",
      path: fixture,
      weights: ["model.safetensors"],
    });
    const broken = join(scratch, "broken");
    await mkdir(broken);
    await writeFile(join(broken, "config.json"), "{}");
    const error = await resolveModel(broken).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as ModelLoadError).path).toBe(broken);
    expect((error as Error).message).toMatch(/missing tokenizer\.json, \*\.safetensors/);
  });

  it("names missing shards of an index", async () => {
    const dir = join(scratch, "sharded");
    await mkdir(dir);
    await writeFile(join(dir, "config.json"), "{}");
    await writeFile(join(dir, "tokenizer.json"), "{}");
    await writeFile(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { a: "model-1.safetensors", b: "model-2.safetensors" } }),
    );
    await writeFile(join(dir, "model-1.safetensors"), "x");
    await expect(resolveModel(dir)).rejects.toThrow(/missing model-2\.safetensors/);
  });

  it("recognises a GGUF file and passes it through", async () => {
    const file = join(scratch, "tiny.gguf");
    await writeFile(file, Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(8)]));
    await expect(resolveModel(file)).resolves.toEqual({ kind: "gguf", path: file });
    const bad = join(scratch, "bad.gguf");
    await writeFile(bad, "nope");
    await expect(resolveModel(bad)).rejects.toThrow(/not a GGUF file/);
  });

  it("explains a path that does not exist", async () => {
    const error = await resolveModel(join(scratch, "nowhere")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as Error).message).toMatch(/not found/);
  });
});
