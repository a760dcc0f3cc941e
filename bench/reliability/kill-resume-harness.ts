/**
 * Kills local training runs with SIGKILL at random moments and checks what a crash leaves:
 * after every kill the newest `checkpoint-N` must be complete and load as a model, and
 * resuming (as many times as it takes) must end with an adapter byte-for-byte identical to
 * the one an uninterrupted run writes.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { LocalTunedModel } from "tunekit/local";
import { rng } from "./datasets-corpus.js";

const CHILD = fileURLToPath(new URL("./kill-resume-child.ts", import.meta.url));
/**
 * tsx's loader, imported into a plain `node` process: the script then runs in the process we
 * spawn (the tsx CLI would run it in a grandchild that a SIGKILL to the child does not reach).
 */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;

export interface KillResumeOptions {
  /** Runs are started until this many kills have been delivered. */
  minKills: number;
  /** Kills per run at most (each run is then resumed to the end without a kill). */
  killsPerTrial: number;
  seed: number;
  workDir: string;
}

export interface KillResumeReport {
  /** SIGKILLs delivered to a running training process. */
  kills: number;
  /** Kills that left a half-written checkpoint (a `.tmp-` entry) behind. */
  killsMidCheckpoint: number;
  /** Newest checkpoints found complete and loaded as a model after a kill. */
  checkpointsLoaded: number;
  /** Kills before the first checkpoint existed (the resume starts over). */
  killsBeforeFirstCheckpoint: number;
  resumes: number;
  /** Trials whose final adapter equals the uninterrupted run's, byte for byte. */
  identical: number;
  trials: number;
  problems: string[];
  /** Wall time of the uninterrupted reference run (spawn included), ms. */
  referenceMs: number;
  /** Of which training, from the first step to the end, ms. */
  trainingMs: number;
}

interface ChildRun {
  done: boolean;
  killed: boolean;
  stepsSeen: number;
  code: number | null;
  stderr: string;
  /** From the first reported step to the process's end, ms. */
  trainingMs: number;
}

/** Runs the child; kills it `killAfterMs` after its first step when given. */
function runChild(mode: "tune" | "resume", dir: string, killAfterMs?: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", tsxLoader, CHILD, mode, dir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const run: ChildRun = {
      done: false,
      killed: false,
      stepsSeen: 0,
      code: null,
      stderr: "",
      trainingMs: 0,
    };
    let timer: NodeJS.Timeout | undefined;
    let firstStep = 0;
    child.stderr.on("data", (chunk: Buffer) => {
      run.stderr = (run.stderr + chunk.toString()).slice(-4000);
    });
    createInterface({ input: child.stdout }).on("line", (line) => {
      let message: { step?: number; done?: boolean };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        return;
      }
      if (message.done) run.done = true;
      if (typeof message.step === "number") {
        run.stepsSeen++;
        if (firstStep === 0) firstStep = Date.now();
        if (killAfterMs !== undefined && timer === undefined) {
          timer = setTimeout(() => {
            // Only a kill that reaches a process still training counts.
            if (child.exitCode === null && child.signalCode === null && !run.done) {
              run.killed = child.kill("SIGKILL");
            }
          }, killAfterMs);
        }
      }
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      run.code = code;
      run.trainingMs = firstStep === 0 ? 0 : Date.now() - firstStep;
      resolve(run);
    });
  });
}

/** The newest `checkpoint-N` directory name in `dir`, if any. */
async function newestCheckpoint(dir: string): Promise<string | undefined> {
  const steps = (await readdir(dir).catch(() => [] as string[]))
    .map((name) => /^checkpoint-(\d+)$/.exec(name)?.[1])
    .filter((step): step is string => step !== undefined)
    .map(Number)
    .sort((a, b) => b - a);
  return steps[0] === undefined ? undefined : join(dir, `checkpoint-${steps[0]}`);
}

export async function runKillResume(options: KillResumeOptions): Promise<KillResumeReport> {
  const random = rng(options.seed);
  const report: KillResumeReport = {
    kills: 0,
    killsMidCheckpoint: 0,
    checkpointsLoaded: 0,
    killsBeforeFirstCheckpoint: 0,
    resumes: 0,
    identical: 0,
    trials: 0,
    problems: [],
    referenceMs: 0,
    trainingMs: 0,
  };
  const referenceDir = join(options.workDir, "reference");
  const started = Date.now();
  const reference = await runChild("tune", referenceDir);
  report.referenceMs = Date.now() - started;
  if (!reference.done) throw new Error(`the reference run failed: ${reference.stderr}`);
  const want = await readFile(join(referenceDir, "adapter_model.safetensors"));
  // Kills land anywhere from the first step to a little past the end of training (the
  // final adapter and the run record are written after the last step).
  const window = Math.max(100, reference.trainingMs * 1.1);
  report.trainingMs = reference.trainingMs;

  for (let trial = 0; report.kills < options.minKills; trial++) {
    report.trials++;
    const dir = join(options.workDir, `trial-${trial}`);
    await mkdir(dir, { recursive: true });
    let kills = 0;
    let mode: "tune" | "resume" = "tune";
    for (let attempt = 0; attempt < options.killsPerTrial * 4 + 2; attempt++) {
      const kill = kills < options.killsPerTrial ? Math.floor(random() * window) : undefined;
      if (mode === "resume") report.resumes++;
      const run = await runChild(mode, dir, kill);
      if (existsSync(join(dir, "tunekit-run.json"))) mode = "resume";
      if (run.done) break;
      if (!run.killed) {
        report.problems.push(
          `trial ${trial}: the ${mode} run failed (exit ${run.code}): ${run.stderr.trim().slice(-300)}`,
        );
        break;
      }
      kills++;
      report.kills++;
      const entries = await readdir(dir);
      if (entries.some((name) => name.startsWith(".tmp-"))) report.killsMidCheckpoint++;
      const checkpoint = await newestCheckpoint(dir);
      if (checkpoint === undefined) {
        report.killsBeforeFirstCheckpoint++;
        continue;
      }
      try {
        const model = await LocalTunedModel.open(checkpoint);
        await model.generate("3", { maxOutputTokens: 1 });
        report.checkpointsLoaded++;
      } catch (error) {
        report.problems.push(`trial ${trial}: ${checkpoint} does not load: ${String(error)}`);
      }
    }
    const finalAdapter = join(dir, "adapter_model.safetensors");
    if (!existsSync(finalAdapter)) {
      report.problems.push(`trial ${trial}: no final adapter after ${kills} kills`);
      continue;
    }
    if ((await readFile(finalAdapter)).equals(want)) report.identical++;
    else
      report.problems.push(
        `trial ${trial}: the final adapter differs from the uninterrupted run's`,
      );
  }
  return report;
}
