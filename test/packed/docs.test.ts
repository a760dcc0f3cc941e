/**
 * Docs that run: every sample in README.md and docs/ is executed against the packed package
 * (conventions in samples.ts and docs/contributing.md). Each markdown file gets a fresh
 * working directory inside a project that installed the tarballs (plus msw, vitest, tsx,
 * typescript, @types/node, google-auth-library and Google's two JS SDKs, as a user's project would have), laid out
 * like a clone for the paths the docs use (`models/demo-counting`, `examples/data/…`). Google's
 * endpoints are answered by tunekit's fakes (docs/fakes.mjs); no cargo on PATH.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProject, type Project, packedPackages, pinned, REPO, run } from "./helpers.js";
import { conventionErrors, documentedFiles, type Sample, samplesOf } from "./samples.js";

const FILES = documentedFiles(REPO);
const SAMPLE_TIMEOUT = 240_000;

let project: Project;
let tarballs: string[];

beforeAll(async () => {
  const { main, addon } = packedPackages();
  tarballs = [main, addon];
  project = await createProject("docs", [
    ...tarballs,
    ...[
      "msw",
      "vitest",
      "tsx",
      "typescript",
      "@types/node",
      "google-auth-library",
      "@google/genai",
      "@google/generative-ai",
    ].map(pinned),
  ]);
  project.write("fakes.mjs", readFileSync(join(REPO, "test/packed/docs/fakes.mjs"), "utf8"));
  // ADC for the Vertex samples: an authorized-user credential whose token the fakes answer.
  project.write(
    "adc.json",
    JSON.stringify({
      type: "authorized_user",
      client_id: "docs",
      client_secret: "docs",
      refresh_token: "docs",
    }),
  );
});

afterAll(() => project?.remove());

it("every sample follows the runner's conventions", () => {
  expect(FILES.flatMap((file) => conventionErrors(samplesOf(REPO, file)))).toEqual([]);
});

/** `npm install tunekit …` installs the packed tarballs instead of the registry's tunekit. */
function withTarballs(code: string): string {
  return code.replace(/^(\s*npm (?:i|install|add)\b[^\n]*)$/gm, (line) =>
    line.replace(/(\s)tunekit(?=\s|$)/g, `$1${tarballs.join(" ")}`),
  );
}

/** Preloads the faked Google endpoints, unless the sample sets up msw itself. */
function fakes(program: string): string[] {
  if (/from ["']msw(\/node)?["']/.test(program)) return [];
  return ["--import", pathToFileURL(join(project.dir, "fakes.mjs")).href];
}

/** Runs of one file: programs with their continuations merged into them. */
function units(samples: Sample[]): { first: Sample; parts: Sample[] }[] {
  const result: { first: Sample; parts: Sample[] }[] = [];
  for (const sample of samples) {
    const previous = result.findLast((u) => u.first.kind === "program");
    if (sample.continues && previous) previous.parts.push(sample);
    else result.push({ first: sample, parts: [sample] });
  }
  return result;
}

for (const path of FILES) {
  const samples = samplesOf(REPO, path);
  const runnable = samples.filter((s) => s.kind !== "data" || s.writesFile || s.skip);
  if (runnable.length === 0) continue;
  const file = samples[0]?.file ?? path;

  describe(file, () => {
    let work: string;
    const background: ChildProcess[] = [];
    const env = () => ({
      ...project.env,
      GEMINI_API_KEY: "test-api-key",
      GOOGLE_APPLICATION_CREDENTIALS: join(project.dir, "adc.json"),
      GOOGLE_CLOUD_PROJECT: "docs-project",
    });

    beforeAll(() => {
      work = join(project.dir, "work", file.replace(/[/.]/g, "_"));
      mkdirSync(work, { recursive: true });
      const installed = join(project.dir, "node_modules", "tunekit");
      cpSync(join(installed, "models"), join(work, "models"), { recursive: true });
      cpSync(join(installed, "examples"), join(work, "examples"), { recursive: true });
    });

    afterAll(() => {
      // Each server runs in its own process group: stop bash, npx and node alike.
      for (const child of background) if (child.pid) process.kill(-child.pid, "SIGTERM");
    });

    for (const { first, parts } of units(samples)) {
      const lines = parts.map((p) => p.line).join("+");
      const title = `${first.lang || "block"} at line ${lines}`;
      if (first.skip) {
        it.skip(`${title} — skipped: ${first.skip}`, () => {});
        continue;
      }
      if (first.kind === "data") {
        if (!first.writesFile) continue;
        it(`${title} is written to ${first.writesFile}`, () => {
          writeFileSync(join(work, first.writesFile as string), first.code);
        });
        continue;
      }
      it(
        `${title} runs`,
        async () => {
          if (first.writesFile) writeFileSync(join(work, first.writesFile), first.code);
          if (first.kind === "shell") {
            const code = withTarballs(first.code);
            if (first.background) {
              const child = spawn("bash", ["-c", code], {
                cwd: work,
                env: env(),
                stdio: ["ignore", "pipe", "pipe"],
                detached: true, // its own process group, stopped as a whole afterwards
              });
              background.push(child);
              const output = await new Promise<string>((resolve, reject) => {
                child.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString()));
                let stderr = "";
                child.stderr.on("data", (chunk: Buffer) => {
                  stderr += chunk.toString();
                });
                child.once("exit", (exitCode) =>
                  reject(new Error(`exited with ${exitCode}: ${stderr}`)),
                );
              });
              expect(output.length).toBeGreaterThan(0);
              expect(child.exitCode).toBeNull();
              return;
            }
            const result = await run("bash", ["-e", "-o", "pipefail", "-c", code], {
              cwd: work,
              env: env(),
              timeoutMs: SAMPLE_TIMEOUT,
            });
            expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
            return;
          }
          const program = parts.map((p) => p.code).join("\n");
          const typescript = first.lang.startsWith("t");
          const isTest = /from ["']vitest["']/.test(program);
          const name = `sample-${first.line}${isTest ? ".test" : ""}.${typescript ? "mts" : "mjs"}`;
          writeFileSync(join(work, name), program);
          const result = isTest
            ? await run("npx", ["vitest", "run", name, "--root", work], {
                cwd: work,
                env: env(),
                timeoutMs: SAMPLE_TIMEOUT,
              })
            : await run("npx", ["tsx", ...fakes(program), name], {
                cwd: work,
                env: env(),
                timeoutMs: SAMPLE_TIMEOUT,
              });
          expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
        },
        SAMPLE_TIMEOUT + 10_000,
      );
    }
  });
}
