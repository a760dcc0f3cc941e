/**
 * Runs many cases in child processes, so a case that kills its process (a crash, an abort, an
 * out-of-memory kill) or never finishes (a hang) is counted instead of taking the run down.
 * The child script is given a JSON file of cases and the index to start at; it prints one
 * JSON line `{"start": i}` before each case and `{"i", "outcome", …}` after it. When the
 * child dies or a case outlives the watchdog, that case is recorded as a crash or a hang
 * and a new child continues with the next case.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

/** What a child reports for one case (`crash` and `hang` are decided here). */
export interface CaseResult {
  i: number;
  /** ok: loaded; typed: a tunekit error; untyped: any other error; crash/hang: see module docs. */
  outcome: "ok" | "typed" | "untyped" | "crash" | "hang";
  code?: string;
  name?: string;
  message?: string;
  ms?: number;
}

export interface IsolatedRunOptions {
  /** A case running longer than this is a hang. */
  timeoutMs: number;
  /** Where the case list is written for the children. */
  workDir: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * tsx's loader, imported into a plain `node` process: the script then runs in the process we
 * spawn (the tsx CLI would run it in a grandchild that a SIGKILL to the child does not reach).
 */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;

/** Runs `script` (a TypeScript file run by tsx) over `cases`; returns one result per case. */
export async function runIsolated(
  script: string,
  cases: readonly unknown[],
  options: IsolatedRunOptions,
): Promise<CaseResult[]> {
  const file = join(options.workDir, `cases-${process.pid}-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(cases));
  const results: CaseResult[] = [];
  let next = 0;
  while (next < cases.length) {
    next = await runChild(script, file, next, cases.length, options, results);
  }
  return results.sort((a, b) => a.i - b.i);
}

/** One child from case `start`; returns the index to continue from. */
function runChild(
  script: string,
  file: string,
  start: number,
  total: number,
  options: IsolatedRunOptions,
  results: CaseResult[],
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", tsxLoader, script, file, String(start)], {
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let current = start;
    let stderr = "";
    let hung = false;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        hung = true;
        child.kill("SIGKILL");
      }, options.timeoutMs);
    };
    arm(); // also covers a child that hangs before its first case
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      let message: { start?: number } & Partial<CaseResult>;
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        return; // stray output from the library under test
      }
      if (typeof message.start === "number") {
        current = message.start;
        arm();
      } else if (typeof message.i === "number" && message.outcome) {
        results.push(message as CaseResult);
        current = message.i + 1;
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(watchdog);
      if (current >= total && code === 0) return resolve(total);
      if (hung) {
        results.push({
          i: current,
          outcome: "hang",
          message: `no result within ${options.timeoutMs} ms`,
        });
      } else {
        results.push({
          i: current,
          outcome: "crash",
          message: `the process ended (${signal ?? `exit ${code}`}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
        });
      }
      resolve(current + 1);
    });
  });
}

/** Counts per outcome, and the results that are not ok or typed. */
export function summarize(results: readonly CaseResult[]): {
  counts: Record<CaseResult["outcome"], number>;
  failures: CaseResult[];
} {
  const counts = { ok: 0, typed: 0, untyped: 0, crash: 0, hang: 0 };
  for (const r of results) counts[r.outcome]++;
  return { counts, failures: results.filter((r) => r.outcome !== "ok" && r.outcome !== "typed") };
}

/**
 * Prints each failure (`describe` names its case), the wall time and the load average, and
 * sets a failing exit code when there are failures.
 */
export function reportEnd(
  failures: readonly CaseResult[],
  describe: (i: number) => string,
  startedAt: number,
): void {
  for (const f of failures) {
    console.log(
      `  FAILURE case ${f.i} (${describe(f.i)}): ${f.outcome} ${f.name ?? ""} ${f.message ?? ""}`,
    );
  }
  const [one, five] = loadavg();
  console.log(
    `  wall ${((Date.now() - startedAt) / 1000).toFixed(1)} s; load average ${one?.toFixed(2)} (1 min), ${five?.toFixed(2)} (5 min)`,
  );
  if (failures.length > 0) process.exitCode = 1;
}
