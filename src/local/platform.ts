/**
 * Names of native targets, as napi-rs spells them (`linux-x64-gnu`, `darwin-arm64`,
 * `win32-x64-msvc`): the addon file `tunekit.<target>.node` and the prebuilt package
 * `tunekit-<target>` carry them.
 */

/**
 * Targets with a prebuilt addon package, declared as optional dependencies of `tunekit`
 * (the `napi.targets` of package.json, as napi-rs names them).
 */
export const PREBUILT_TARGETS: readonly string[] = [
  "linux-x64-gnu",
  "linux-arm64-gnu",
  "linux-x64-musl",
  "darwin-arm64",
  "darwin-x64",
  "win32-x64-msvc",
];

/** True on a musl libc Linux (Alpine): Node's report names a glibc version only on glibc. */
export function isMusl(): boolean {
  if (process.platform !== "linux") return false;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } };
  return !report?.header?.glibcVersionRuntime;
}

/**
 * This process's target, e.g. `linux-x64-gnu`, `linux-x64-musl`, `darwin-arm64`,
 * `win32-x64-msvc`: what napi-rs's loader and `napi build --platform` call it.
 */
export function nativeTarget(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
  musl: boolean = isMusl(),
): string {
  if (platform === "linux" && arch === "arm")
    return `linux-arm-${musl ? "musleabihf" : "gnueabihf"}`;
  if (platform === "linux") return `linux-${arch}-${musl ? "musl" : "gnu"}`;
  if (platform === "win32") return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The npm package holding the prebuilt addon for `target`. */
export function prebuiltPackageName(target: string): string {
  return `tunekit-${target}`;
}
