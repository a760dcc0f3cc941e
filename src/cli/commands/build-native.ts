import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { copyFile, mkdir, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { AbortedError, NativeLoadError } from "../../core/errors.js";
import { localAddonPath, NATIVE_PATH_ENV } from "../../local/native.js";
import { packageRoot } from "../../local/package-root.js";
import { nativeTarget } from "../../local/platform.js";
import { EXIT } from "../exit-codes.js";
import type { Output } from "../output.js";

/** Flags of `tunekit build-native`. */
export interface BuildNativeFlags {
  /** Write the addon here instead of next to the package's loader. */
  out?: string;
}

const RUST_HINT =
  "Install Rust from https://rustup.rs, open a new shell, then rerun `npx tunekit build-native`";

/**
 * `tunekit build-native`: builds the native addon from the Rust sources shipped in the package
 * (`native/`), for platforms without a prebuilt addon package. Runs `cargo build --release
 * --locked` (crates come from crates.io; nothing else is downloaded) and puts the addon where
 * the package's loader looks first, `native/tunekit.<target>.node`, or at `--out`.
 */
export async function buildNativeCommand(flags: BuildNativeFlags, out: Output): Promise<number> {
  const root = packageRoot();
  const manifest = join(root, "native", "Cargo.toml");
  if (!existsSync(manifest)) {
    throw new NativeLoadError(
      `The native sources are not in this installation (${manifest} does not exist); reinstall tunekit.`,
    );
  }
  const cargo = cargoVersion(out.io.env);
  const targetDir = cargoTargetDir(out.io.env, root);
  const destination = resolve(flags.out ?? localAddonPath());
  out.note(`building the tunekit addon for ${nativeTarget()} with ${cargo}`);
  out.note(
    `sources ${dirname(manifest)}, build directory ${targetDir} (a first build takes minutes)`,
  );

  const started = Date.now();
  const library = await cargoBuild(manifest, targetDir, out);
  await install(library, destination);
  checkLoads(destination);

  const seconds = Math.round((Date.now() - started) / 1000);
  const usesIt =
    flags.out === undefined
      ? "tunekit/local loads it from there."
      : `Set ${NATIVE_PATH_ENV}=${destination} for tunekit/local to load it.`;
  out.result({ addon: destination, target: nativeTarget(), seconds, cargo }, () =>
    [`Built ${destination} in ${seconds} s.`, usesIt].join("\n"),
  );
  return EXIT.ok;
}

/** `cargo --version`, or a `NativeLoadError` saying how to get Rust. */
function cargoVersion(env: NodeJS.ProcessEnv): string {
  const probe = spawnSync("cargo", ["--version"], { env, encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new NativeLoadError(
      "cargo (Rust's build tool) was not found on PATH. Building tunekit's native addon from source needs Rust 1.88 or newer and a C compiler (gcc or clang; on Windows, the MSVC build tools).",
      { hint: RUST_HINT },
    );
  }
  return probe.stdout.trim();
}

/**
 * `CARGO_TARGET_DIR` when set, else a cache directory shared by every installation, so a
 * rebuild after an upgrade reuses the compiled dependencies.
 */
function cargoTargetDir(env: NodeJS.ProcessEnv, root: string): string {
  if (env.CARGO_TARGET_DIR) return resolve(env.CARGO_TARGET_DIR);
  const cache = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  const shared = join(cache, "tunekit", "cargo-target");
  try {
    mkdirSync(shared, { recursive: true });
    return shared;
  } catch {
    return join(root, "native", "target");
  }
}

/** Runs the release build and returns the path of the `tunekit_node` library it produced. */
function cargoBuild(manifest: string, targetDir: string, out: Output): Promise<string> {
  const signal = out.io.interrupt;
  if (signal?.aborted)
    return Promise.reject(new AbortedError("Building the native addon was interrupted"));
  const args = [
    "build",
    "--release",
    "--locked",
    "-p",
    "tunekit-node",
    "--manifest-path",
    manifest,
    "--message-format=json-render-diagnostics",
  ];
  return new Promise((resolvePath, reject) => {
    // In native/, so that cargo reads native/.cargo/config.toml (per-target linker flags).
    const child = spawn("cargo", args, {
      cwd: dirname(manifest),
      env: { ...out.io.env, CARGO_TARGET_DIR: targetDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const onAbort = () => child.kill("SIGINT");
    signal?.addEventListener("abort", onAbort, { once: true });
    let library: string | undefined;
    let pending = "";
    // stdout carries one JSON message per line; the artifact message names the library.
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) library = artifactOf(line) ?? library;
    });
    child.stderr.on("data", (chunk: Buffer) => out.io.stderr.write(chunk));
    child.on("error", (error) =>
      reject(
        new NativeLoadError(`cargo could not be started: ${error.message}`, {
          cause: error,
          hint: RUST_HINT,
        }),
      ),
    );
    child.on("close", (code) => {
      signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted)
        return reject(new AbortedError("Building the native addon was interrupted"));
      if (code !== 0 || library === undefined) {
        return reject(
          new NativeLoadError(
            `cargo build failed (exit code ${code}); its messages are above. The build needs Rust 1.88 or newer and a C compiler.`,
            {
              hint: "Run `rustup update`, check that cc/gcc/clang works, then rerun `npx tunekit build-native`",
            },
          ),
        );
      }
      resolvePath(library);
    });
  });
}

/** The cdylib path in one `cargo --message-format=json` line, if it is tunekit-node's artifact. */
function artifactOf(line: string): string | undefined {
  if (!line.includes('"compiler-artifact"')) return undefined;
  try {
    const message = JSON.parse(line) as {
      reason?: string;
      target?: { name?: string; kind?: string[] };
      filenames?: string[];
    };
    if (message.reason !== "compiler-artifact" || message.target?.name !== "tunekit_node")
      return undefined;
    return message.filenames?.find((f) => /\.(so|dylib|dll)$/.test(f));
  } catch {
    return undefined;
  }
}

/** Copies the library to `destination` under a temporary name first, so no reader sees half a file. */
async function install(library: string, destination: string): Promise<void> {
  const temporary = `${destination}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(destination), { recursive: true });
    await copyFile(library, temporary);
    await rename(temporary, destination);
  } catch (error) {
    await rm(temporary, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
      throw new NativeLoadError(`Cannot write ${destination} (${code}).`, {
        cause: error,
        hint: `Write it elsewhere with \`npx tunekit build-native --out <file>\` and set ${NATIVE_PATH_ENV}=<file>`,
      });
    }
    throw error;
  }
}

/** Opens the new addon in this process, so a broken build is reported here and not on first use. */
function checkLoads(path: string): void {
  try {
    const addon = createRequire(import.meta.url)(path) as { loadModel?: unknown };
    if (typeof addon.loadModel !== "function") throw new Error("it does not export loadModel");
  } catch (error) {
    throw new NativeLoadError(
      `The addon was built but does not load: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
