import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { describe, expect, it } from "vitest";
import { runTunekit } from "./helpers.js";

/** PATH without the directories that hold cargo (rustup's ~/.cargo/bin, /usr/bin, …). */
function pathWithoutCargo(): string {
  return (process.env.PATH ?? "")
    .split(delimiter)
    .filter((dir) => dir !== "" && !existsSync(join(dir, "cargo")))
    .join(delimiter);
}

describe("tunekit build-native", () => {
  it("without cargo says that Rust is needed and where to get it (exit 6)", async () => {
    const run = await runTunekit(["build-native"], { env: { PATH: pathWithoutCargo() } });
    expect(run.code).toBe(6);
    expect(run.stderr).toContain("cargo (Rust's build tool) was not found on PATH");
    expect(run.stderr).toContain("https://rustup.rs");
    expect(run.stderr).toContain("npx tunekit build-native");
  });

  it("is listed in the help with the demo", async () => {
    const run = await runTunekit(["--help"]);
    expect(run.stdout).toMatch(/build-native \[options\]\s+build the native addon/);
    expect(run.stdout).toMatch(/demo \[options\]\s+tune the shipped demo model/);
  });
});
