/**
 * Fresh projects that install the packed tarballs (`npm run pack:packages` writes them and
 * `build/packages/packages.json`; `TUNEKIT_PACKED_DIR` points elsewhere), and a way to run
 * commands in them the way a user would: `node` from PATH, `npx`, and no `cargo` on PATH.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const repoManifest = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};

export interface PackedPackage {
  tarball: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
}

/** The tarballs to install: `tunekit-<version>.tgz` and this platform's addon package. */
export function packedPackages(): { main: string; addon: string; all: PackedPackage[] } {
  const dir = resolve(process.env.TUNEKIT_PACKED_DIR ?? join(REPO, "build", "packages"));
  const list = join(dir, "packages.json");
  if (!existsSync(list)) {
    throw new Error(
      `${list} is missing: run \`npm run pack:packages\` first (or set TUNEKIT_PACKED_DIR)`,
    );
  }
  const all = JSON.parse(readFileSync(list, "utf8")) as PackedPackage[];
  const main = all.find((p) => basename(p.tarball) === `tunekit-${repoManifest.version}.tgz`);
  const addon = all.find((p) => p !== main);
  if (!main || !addon) throw new Error(`${list} must list tunekit and one addon package`);
  return { main: main.tarball, addon: addon.tarball, all };
}

/** A dev dependency of this repository, pinned as here (typescript, @types/node, msw, …). */
export function pinned(name: string): string {
  const version = repoManifest.devDependencies[name];
  if (!version) throw new Error(`${name} is not a devDependency of tunekit`);
  return `${name}@${version}`;
}

/** PATH without any directory that holds `cargo` or `rustc`: a machine without Rust. */
export function pathWithoutRust(path = process.env.PATH ?? ""): string {
  const exe = process.platform === "win32" ? ".exe" : "";
  return path
    .split(delimiter)
    .filter(
      (dir) =>
        dir && !existsSync(join(dir, `cargo${exe}`)) && !existsSync(join(dir, `rustc${exe}`)),
    )
    .join(delimiter);
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` in `cwd` and resolves with its exit code and output (never rejects on exit codes). */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 240_000,
        maxBuffer: 64 * 1024 * 1024,
        shell: process.platform === "win32",
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code === "string") {
          reject(error); // could not start (ENOENT, …)
          return;
        }
        const code = error ? (typeof error.code === "number" ? error.code : 128) : 0;
        resolveRun({
          code,
          stdout,
          stderr: error?.killed ? `${stderr}\n(killed: timed out)` : stderr,
        });
      },
    );
  });
}

/** A temporary project with the packed tunekit installed. */
export interface Project {
  dir: string;
  /** Environment for commands in it: no Rust on PATH, the project's bin first. */
  env: NodeJS.ProcessEnv;
  /** Writes a file (relative to the project). */
  write(file: string, content: string): string;
  /** `node <args>` in the project. */
  node(args: string[], env?: NodeJS.ProcessEnv): Promise<Run>;
  /** `npx <args>` in the project. */
  npx(args: string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<Run>;
  remove(): void;
}

/**
 * Creates a project in a fresh temporary directory and `npm install`s `specs` there (tarball
 * paths or registry specs), with no Rust on PATH. `omitOptional` installs without optional
 * dependencies, i.e. without any prebuilt addon.
 */
export async function createProject(
  name: string,
  specs: string[],
  options: { omitOptional?: boolean } = {},
): Promise<Project> {
  const dir = mkdtempSync(join(tmpdir(), `tunekit-packed-${name}-`));
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name, private: true }, null, 2)}\n`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [join(dir, "node_modules", ".bin"), pathWithoutRust()].join(delimiter),
    NO_COLOR: "1",
  };
  // No credentials leak into samples or CLI runs from the developer's shell.
  for (const key of ["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS"])
    delete env[key];
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const install = await run(
    npm,
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      ...(options.omitOptional ? ["--omit=optional"] : []),
      ...specs,
    ],
    { cwd: dir, env, timeoutMs: 240_000 },
  );
  if (install.code !== 0) {
    throw new Error(`npm install in ${dir} failed (${install.code}):\n${install.stderr}`);
  }
  const npx = process.platform === "win32" ? "npx.cmd" : "npx";
  return {
    dir,
    env,
    write(file, content) {
      const path = join(dir, file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
      return path;
    },
    node: (args, extra = {}) =>
      run(process.execPath, args, { cwd: dir, env: { ...env, ...extra } }),
    npx: (args, extra = {}, timeoutMs = 240_000) =>
      run(npx, args, { cwd: dir, env: { ...env, ...extra }, timeoutMs }),
    remove() {
      if (!process.env.TUNEKIT_PACKED_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The contents of a file under test/packed/consumer/. */
export function consumerFile(file: string): string {
  return readFileSync(join(REPO, "test", "packed", "consumer", file), "utf8");
}
