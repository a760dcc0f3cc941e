/**
 * Packs what gets published, the way it gets published:
 * - `tunekit-<version>.tgz`: the main package (`files` of package.json) with
 *   `optionalDependencies` on every prebuilt addon package of the same version, as
 *   `napi pre-publish` writes them at release time;
 * - `tunekit-<target>-<version>.tgz`: the prebuilt addon package of one target
 *   (`npm/<target>/package.json`, made by `napi create-npm-dirs`, plus the stripped addon).
 *
 *   npx tsx scripts/package/pack.ts                      # both, for this machine's target
 *   npx tsx scripts/package/pack.ts --target linux-arm64-gnu --addon artifacts/tunekit.linux-arm64-gnu.node
 *   npx tsx scripts/package/pack.ts --only main          # or --only addon
 *
 * Writes the tarballs and `packages.json` (their paths and sizes) to `--out`
 * (default build/packages) and prints the sizes. Needs `npm run build` and, for the addon
 * package, a built addon (`npm run build:native`).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { nativeTarget } from "../../src/local/platform.js";
import { elfHasSymbolTable } from "./elf.js";

const root = resolve(import.meta.dirname, "../..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

const { values: args } = parseArgs({
  options: {
    out: { type: "string", default: join(root, "build", "packages") },
    target: { type: "string", default: nativeTarget() },
    addon: { type: "string" },
    only: { type: "string" },
  },
});
const out = resolve(args.out);
const target = args.target;

interface Manifest {
  name: string;
  version: string;
  napi?: { targets: string[] };
  optionalDependencies?: Record<string, string>;
}
interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

function npmPack(dir: string, extra: string[] = []): PackResult {
  const json = execFileSync(npm, ["pack", "--json", "--ignore-scripts", ...extra], {
    cwd: dir,
    encoding: "utf8",
    shell: process.platform === "win32",
  });
  const [result] = JSON.parse(json) as PackResult[];
  if (!result) throw new Error(`npm pack in ${dir} reported nothing`);
  return result;
}

/** The napi-rs platform name of a Rust target triple in package.json's `napi.targets`. */
async function targetsOf(manifest: Manifest): Promise<string[]> {
  const { parseTriple } = await import("@napi-rs/cli");
  return (manifest.napi?.targets ?? []).map((triple) => parseTriple(triple).platformArchABI);
}

function fresh(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function packMain(): Promise<PackResult> {
  const manifest = readJson<Manifest>(join(root, "package.json"));
  if (!existsSync(join(root, "dist", "index.js")))
    throw new Error("dist/ is missing: run `npm run build` first");
  // Stage exactly the files `npm pack` would take, then add the optional dependencies.
  const listed = npmPack(root, ["--dry-run"]).files.map((f) => f.path);
  const stage = fresh(join(out, "stage", "tunekit"));
  for (const file of listed) {
    mkdirSync(dirname(join(stage, file)), { recursive: true });
    copyFileSync(join(root, file), join(stage, file));
  }
  const optionalDependencies: Record<string, string> = {};
  for (const platform of await targetsOf(manifest)) {
    optionalDependencies[`${manifest.name}-${platform}`] = manifest.version;
  }
  const staged = {
    ...readJson<Record<string, unknown>>(join(root, "package.json")),
    optionalDependencies,
  };
  writeFileSync(join(stage, "package.json"), `${JSON.stringify(staged, null, 2)}\n`);
  return npmPack(stage, ["--pack-destination", out]);
}

async function packAddon(): Promise<PackResult> {
  const manifest = readJson<Manifest>(join(root, "package.json"));
  const targets = await targetsOf(manifest);
  if (!targets.includes(target)) {
    throw new Error(`${target} is not in package.json napi.targets (${targets.join(", ")})`);
  }
  const dir = join(root, "npm", target);
  const addonManifest = readJson<Manifest & { main: string }>(join(dir, "package.json"));
  if (addonManifest.version !== manifest.version) {
    throw new Error(
      `npm/${target} is version ${addonManifest.version}, tunekit ${manifest.version}: run \`npx napi version\``,
    );
  }
  const addon = resolve(args.addon ?? join(root, "native", addonManifest.main));
  if (!existsSync(addon))
    throw new Error(`${addon} is missing: run \`npm run build:native\` first`);
  if (elfHasSymbolTable(addon)) {
    throw new Error(`${addon} is not stripped (it has a .symtab): build with the release profile`);
  }
  const stage = fresh(join(out, "stage", basename(dir)));
  copyFileSync(join(dir, "package.json"), join(stage, "package.json"));
  copyFileSync(join(dir, "README.md"), join(stage, "README.md"));
  copyFileSync(addon, join(stage, addonManifest.main));
  return npmPack(stage, ["--pack-destination", out]);
}

mkdirSync(out, { recursive: true });
const results: PackResult[] = [];
if (args.only !== "addon") results.push(await packMain());
if (args.only !== "main") results.push(await packAddon());
rmSync(join(out, "stage"), { recursive: true, force: true });

const packages = results.map((r) => ({
  tarball: join(out, r.filename),
  size: r.size,
  unpackedSize: r.unpackedSize,
  entryCount: r.entryCount,
}));
writeFileSync(join(out, "packages.json"), `${JSON.stringify(packages, null, 2)}\n`);
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
for (const p of packages) {
  console.log(
    `${basename(p.tarball).padEnd(40)} packed ${mb(p.size).padStart(10)}  unpacked ${mb(p.unpackedSize).padStart(10)}  ${p.entryCount} files`,
  );
}
