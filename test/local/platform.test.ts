import { readFileSync } from "node:fs";
import { parseTriple } from "@napi-rs/cli";
import { describe, expect, it } from "vitest";
import { nativeTarget, PREBUILT_TARGETS, prebuiltPackageName } from "../../src/local/platform.js";

const manifest = JSON.parse(readFileSync("package.json", "utf8")) as {
  napi: { binaryName: string; targets: string[] };
};

describe("native target names", () => {
  it("are napi-rs's names for the platforms tunekit ships", () => {
    expect(nativeTarget("linux", "x64", false)).toBe("linux-x64-gnu");
    expect(nativeTarget("linux", "x64", true)).toBe("linux-x64-musl");
    expect(nativeTarget("linux", "arm64", false)).toBe("linux-arm64-gnu");
    expect(nativeTarget("darwin", "arm64", false)).toBe("darwin-arm64");
    expect(nativeTarget("darwin", "x64", false)).toBe("darwin-x64");
    expect(nativeTarget("win32", "x64", false)).toBe("win32-x64-msvc");
  });

  it("name this machine the way napi-rs's loader does", () => {
    // This machine is glibc Linux x64 (the only platform CI builds here).
    if (process.platform === "linux" && process.arch === "x64") {
      expect(nativeTarget()).toBe("linux-x64-gnu");
    } else {
      expect(nativeTarget()).toMatch(new RegExp(`^${process.platform}-${process.arch}`));
    }
  });

  it("list exactly the napi.targets of package.json as prebuilt packages", () => {
    const fromManifest = manifest.napi.targets.map((triple) => parseTriple(triple).platformArchABI);
    expect([...PREBUILT_TARGETS].sort()).toEqual(fromManifest.sort());
    for (const target of PREBUILT_TARGETS) {
      expect(prebuiltPackageName(target)).toBe(`${manifest.napi.binaryName}-${target}`);
    }
  });
});
