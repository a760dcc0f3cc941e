/**
 * `resolveModel`: turns what a user passes as a base model — a model directory, a GGUF
 * file or a hub id `org/name[@revision]` — into a local path the native core can load.
 */
import { open, readdir, readFile, stat } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import {
  InvalidOptionError,
  ModelLoadError,
  NotFoundError,
  throwIfAborted,
} from "../../core/errors.js";
import { noSuchDirectory } from "../paths.js";
import {
  COMMIT_HASH,
  exists,
  expandUser,
  type HubEnv,
  hubCacheDir,
  hubEndpoint,
  hubToken,
  isOffline,
  type RepoCachePaths,
  readRef,
  repoCachePaths,
  writeRef,
} from "./cache.js";
import { downloadFileToCache, type ModelDownloadEvent, toHubError } from "./download.js";
import {
  checkModelDirectory,
  MODEL_METADATA_FILES,
  SAFETENSORS_INDEX,
  shardsFromIndex,
  unindexedWeights,
} from "./files.js";

/** Options of {@link resolveModel}. */
export interface ResolveModelOptions {
  /** Branch, tag or commit for a hub id (`org/name@rev` in the id works too). @default "main" */
  revision?: string;
  /** The hub cache. @default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub` */
  cacheDir?: string;
  /** The hub's base URL. @default `$HF_ENDPOINT`, else https://huggingface.co */
  endpoint?: string;
  /** Access token; `false` sends none. @default `$HF_TOKEN`, else the token file of `huggingface-cli login` */
  token?: string | false;
  /** Use only the cache, never the network. @default `$HF_HUB_OFFLINE` */
  offline?: boolean;
  /** Stops the download; the partial file stays as `*.incomplete` and the next run resumes it. */
  signal?: AbortSignal;
  /** Download progress: which files, bytes per file, which came from the cache. */
  onProgress?: (event: ModelDownloadEvent) => void;
  /** Where `HF_*` variables are read. @default process.env */
  env?: HubEnv;
  /** Replaces global `fetch` (proxies, tests). */
  fetch?: typeof fetch;
}

/** A base model that is ready on disk. */
export type ResolvedModel =
  | {
      kind: "directory";
      /** Absolute path of the model directory. */
      path: string;
      weights: readonly string[];
    }
  | {
      /** A llama.cpp GGUF file (checked for its magic here; the native core parses it). */
      kind: "gguf";
      path: string;
    }
  | {
      kind: "hub";
      /** `<cache>/models--org--name/snapshots/<commit>`: a model directory. */
      path: string;
      repo: string;
      revision: string;
      commit: string;
      cacheDir: string;
      weights: readonly string[];
      /** True when the hub was not asked (offline, or unreachable and the cache had the model). */
      fromCache: boolean;
    };

/** What a base model string denotes, before anything is read. */
export type ModelSpec =
  | { kind: "path"; path: string }
  | { kind: "hub"; repo: string; revision: string | undefined };

const HUB_ID = /^([A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(.+))?$/;

function validRepoPart(part: string): boolean {
  return !part.includes("--") && !part.includes("..") && !part.endsWith(".") && part.length <= 96;
}

/**
 * Classifies a base model string without touching the disk: `org/name` and
 * `org/name@revision` are hub ids; anything starting with `.`, `/` or `~`, or ending with
 * `.gguf`, is a path. {@link resolveModel} prefers an existing path over a hub id.
 */
export function parseModelSpec(spec: string): ModelSpec {
  const text = spec.trim();
  const match = HUB_ID.exec(text);
  if (match && !/\.gguf$/i.test(text)) {
    const repo = match[1] as string;
    const revision = match[2];
    if (
      repo.split("/").every(validRepoPart) &&
      (revision === undefined || validRevision(revision))
    ) {
      return { kind: "hub", repo, revision };
    }
  }
  return { kind: "path", path: text };
}

function validRevision(revision: string): boolean {
  return (
    revision.length > 0 &&
    !revision.split("/").some((part) => part === "" || part === "." || part === "..") &&
    !/[\s\\:]/.test(revision)
  );
}

/**
 * Makes a base model available on disk and says where it is.
 *
 * - A **directory** must hold `config.json`, `tokenizer.json` and safetensors weights (all
 *   shards of an index); missing files are named in a `ModelLoadError`.
 * - A **`.gguf` file** is recognised and returned as is.
 * - A **hub id** is downloaded into the Hugging Face cache with Python's exact layout, only
 *   the files a model needs (config, generation config, tokenizer files, chat template,
 *   safetensors weights and index). Files already there — from tunekit or from Python — are
 *   reused. With `HF_HUB_OFFLINE=1` (or `offline: true`) only the cache is used; when the
 *   hub cannot be reached, a complete cached snapshot is used with a warning.
 *
 * @example
 * ```ts
 * const model = await resolveModel("HuggingFaceTB/SmolLM2-135M@main", {
 *   onProgress: (e) => e.type === "file-progress" && console.log(e.file, e.bytes, e.totalBytes),
 * });
 * console.log(model.path); // ~/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/<commit>
 * ```
 */
export async function resolveModel(
  spec: string,
  options: ResolveModelOptions = {},
): Promise<ResolvedModel> {
  if (typeof spec !== "string" || spec.trim() === "") {
    throw new InvalidOptionError(
      "baseModel",
      "baseModel must be a directory, a .gguf file or a hub id",
    );
  }
  throwIfAborted(options.signal);
  const parsed = parseModelSpec(spec);
  const asPath = resolvePath(expandUser(parsed.kind === "path" ? parsed.path : spec.trim()));
  if (parsed.kind === "path" || (await exists(asPath))) return resolveLocal(asPath, spec);
  // `models/demo-countin` when ./models is a directory is a mistyped path, not a hub id:
  // asking the hub would only add a network error to the typo.
  const owner = parsed.repo.split("/")[0] as string;
  if (await isDirectory(resolvePath(owner))) {
    throw new ModelLoadError(
      `base model ${spec.trim()} not found: ${noSuchDirectory(spec.trim())}. It is read as a ` +
        `local path because ${owner}/ is a directory here`,
      { path: asPath, hint: `To use the hub model ${parsed.repo}, run from another directory` },
    );
  }
  return resolveHub(parsed.repo, parsed.revision, options);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function resolveLocal(path: string, spec: string): Promise<ResolvedModel> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    throw new ModelLoadError(
      `base model ${spec.trim()} not found: ${noSuchDirectory(spec.trim())}, and it is not a hub id (org/name[@revision])`,
      { path, cause: error },
    );
  }
  if (info.isFile()) {
    if (!/\.gguf$/i.test(path)) {
      throw new ModelLoadError(
        `base model ${path} is a file; expected a model directory (config.json, tokenizer.json, *.safetensors) or a .gguf file`,
        { path },
      );
    }
    const handle = await open(path, "r");
    try {
      const magic = Buffer.alloc(4);
      await handle.read(magic, 0, 4, 0);
      if (magic.toString("latin1") !== "GGUF") {
        throw new ModelLoadError(`${path} is not a GGUF file (bad magic)`, { path });
      }
    } finally {
      await handle.close();
    }
    return { kind: "gguf", path };
  }
  const { missing, weights } = await checkModelDirectory(path);
  if (missing.length > 0) {
    throw new ModelLoadError(`model directory ${path} is missing ${missing.join(", ")}`, {
      path,
      hint: "A model directory needs config.json, tokenizer.json and safetensors weights (Hugging Face format).",
    });
  }
  return { kind: "directory", path, weights };
}

async function resolveHub(
  repo: string,
  revisionInSpec: string | undefined,
  options: ResolveModelOptions,
): Promise<ResolvedModel> {
  if (
    revisionInSpec !== undefined &&
    options.revision !== undefined &&
    revisionInSpec !== options.revision
  ) {
    throw new InvalidOptionError(
      "revision",
      `revision given twice: ${repo}@${revisionInSpec} and revision "${options.revision}"`,
    );
  }
  const revision = revisionInSpec ?? options.revision ?? "main";
  if (!validRevision(revision)) {
    throw new InvalidOptionError("revision", `invalid revision ${JSON.stringify(revision)}`);
  }
  const env = options.env ?? process.env;
  const cacheDir = resolvePath(options.cacheDir ?? hubCacheDir(env));
  const paths = repoCachePaths(cacheDir, repo);
  const emit = (event: ModelDownloadEvent) => options.onProgress?.(event);
  const offline = options.offline ?? isOffline(env);

  if (offline) {
    const cached = await fromCache(paths, repo, revision, cacheDir);
    if (cached.model) {
      emit(await resolvedEvent(cached.model, true));
      return cached.model;
    }
    throw new ModelLoadError(
      `${repo}@${revision} is not in the hub cache ${cacheDir} and offline mode is on (HF_HUB_OFFLINE): ${cached.reason}`,
      {
        path: paths.root,
        hint: "Unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE/HF_HOME at a cache that has it.",
      },
    );
  }

  // A commit never changes: a complete snapshot of it needs no network at all.
  if (COMMIT_HASH.test(revision)) {
    const cached = await fromCache(paths, repo, revision, cacheDir);
    if (cached.model) {
      emit(await resolvedEvent(cached.model, true));
      return cached.model;
    }
  }

  const endpoint = (options.endpoint ?? hubEndpoint(env)).replace(/\/+$/, "");
  const token = options.token === false ? undefined : (options.token ?? (await hubToken(env)));
  const hubFetch = makeFetch(options.fetch ?? fetch, endpoint, token, options.signal);

  const { modelInfo } = await import("@huggingface/hub");
  let commit: string;
  let siblings: string[];
  try {
    const info = await modelInfo({
      name: repo,
      revision,
      hubUrl: endpoint,
      fetch: hubFetch,
      additionalFields: ["sha", "filePaths"],
    });
    commit = info.sha;
    siblings = info.filePaths ?? [];
  } catch (error) {
    const mapped = toHubError(
      error,
      `cannot look up ${repo}@${revision} on ${endpoint}`,
      options.signal,
    );
    if (mapped.code === "connection") {
      const cached = await fromCache(paths, repo, revision, cacheDir);
      if (cached.model) {
        emit({
          type: "warning",
          message: `${endpoint} is unreachable; using ${repo}@${revision} from the cache (commit ${cached.model.commit})`,
        });
        emit(await resolvedEvent(cached.model, true));
        return cached.model;
      }
    }
    if (mapped.code === "not_found" && mapped instanceof NotFoundError) {
      throw new NotFoundError(
        `${mapped.message} (and there is no local directory ${resolvePath(repo)})`,
        { httpStatus: mapped.httpStatus },
        { cause: mapped.cause, ...(mapped.hint ? { hint: mapped.hint } : {}) },
      );
    }
    throw mapped;
  }
  if (typeof commit !== "string" || !COMMIT_HASH.test(commit)) {
    throw new ModelLoadError(`the hub sent no commit id for ${repo}@${revision}`, { path: repo });
  }
  await writeRef(paths, revision, commit);

  const ctx = {
    repo,
    commit,
    paths,
    endpoint,
    fetch: hubFetch,
    signal: options.signal,
    emit,
  };
  const metadata = MODEL_METADATA_FILES.filter((name) => siblings.includes(name));
  let weights: string[];
  let planned: string[];
  if (siblings.includes(SAFETENSORS_INDEX)) {
    const indexPath = await downloadFileToCache(ctx, SAFETENSORS_INDEX);
    weights = shardsFromIndex(await readFile(indexPath, "utf8"), `${repo}/${SAFETENSORS_INDEX}`);
    planned = [...metadata, SAFETENSORS_INDEX, ...weights];
  } else {
    weights = unindexedWeights(siblings);
    planned = [...metadata, ...weights];
  }
  if (weights.length === 0) {
    const gguf = siblings.filter((name) => /\.gguf$/i.test(name));
    throw new ModelLoadError(
      `${repo}@${revision} has no safetensors weights` +
        (gguf.length > 0 ? ` (it has GGUF files: ${gguf.slice(0, 5).join(", ")})` : ""),
      {
        path: repo,
        hint:
          gguf.length > 0
            ? "Download one .gguf file and pass its path as the base model."
            : "tunekit loads Hugging Face models stored as safetensors.",
      },
    );
  }
  const snapshot = join(paths.snapshots, commit);
  emit({ type: "resolved", repo, revision, commit, files: planned, fromCache: false });
  for (const file of planned) {
    throwIfAborted(options.signal);
    await downloadFileToCache(ctx, file);
  }
  const { missing } = await checkModelDirectory(snapshot);
  if (missing.length > 0) {
    throw new ModelLoadError(`${repo}@${revision} lacks ${missing.join(", ")}`, { path: snapshot });
  }
  return {
    kind: "hub",
    path: snapshot,
    repo,
    revision,
    commit,
    cacheDir,
    weights,
    fromCache: false,
  };
}

async function resolvedEvent(
  model: ResolvedModel & { kind: "hub" },
  fromCache: boolean,
): Promise<ModelDownloadEvent> {
  return {
    type: "resolved",
    repo: model.repo,
    revision: model.revision,
    commit: model.commit,
    files: (await readdir(model.path)).sort(),
    fromCache,
  };
}

/** A complete snapshot of `revision` from the cache, or why there is none. */
async function fromCache(
  paths: RepoCachePaths,
  repo: string,
  revision: string,
  cacheDir: string,
): Promise<{ model?: ResolvedModel & { kind: "hub" }; reason: string }> {
  const commit = await readRef(paths, revision);
  if (commit === undefined) return { reason: `no refs/${revision} in ${paths.root}` };
  const snapshot = join(paths.snapshots, commit);
  if (!(await exists(snapshot))) return { reason: `no snapshot ${commit}` };
  const { missing, weights } = await checkModelDirectory(snapshot);
  if (missing.length > 0) return { reason: `snapshot ${commit} lacks ${missing.join(", ")}` };
  return {
    model: {
      kind: "hub",
      path: snapshot,
      repo,
      revision,
      commit,
      cacheDir,
      weights,
      fromCache: true,
    },
    reason: "",
  };
}

/** A fetch that sends the token to the hub's own origin only and honours the abort signal. */
function makeFetch(
  base: typeof fetch,
  endpoint: string,
  token: string | undefined,
  signal: AbortSignal | undefined,
): typeof fetch {
  const origin = new URL(endpoint).origin;
  return (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const headers = new Headers(init?.headers);
    if (token && new URL(url).origin === origin && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${token}`);
    }
    const next: RequestInit = { ...init, headers };
    if (signal) next.signal = init?.signal ? AbortSignal.any([signal, init.signal]) : signal;
    return base(input, next);
  };
}
