/**
 * Kill-and-resume, full size: ≥ 50 SIGKILLs at random moments of local training runs (the
 * tiny fixture model, dropout on, a checkpoint every 3 steps), each followed by a check that
 * the newest checkpoint loads, and resumes until every run ends with the adapter an
 * uninterrupted run writes (byte for byte).
 *
 *   npm run build:native && npm run build && npx tsx bench/reliability/kill-resume.ts [kills=50] [kills per run=3] [seed=1]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runKillResume } from "./kill-resume-harness.js";

async function main(): Promise<void> {
  const minKills = Number(process.argv[2] ?? 50);
  const killsPerTrial = Number(process.argv[3] ?? 3);
  const seed = Number(process.argv[4] ?? 1);
  const workDir = await mkdtemp(join(tmpdir(), "tunekit-reliability-kill-"));
  try {
    const started = Date.now();
    const r = await runKillResume({ minKills, killsPerTrial, seed, workDir });
    const [one, five] = loadavg();
    console.log(`kill -9 and resume: ${r.trials} runs, ${r.kills} kills (seed ${seed})`);
    console.log(`  kills that left a half-written checkpoint: ${r.killsMidCheckpoint}`);
    console.log(
      `  kills before the first checkpoint (resume starts over): ${r.killsBeforeFirstCheckpoint}`,
    );
    console.log(
      `  newest checkpoint complete and loaded after a kill: ${r.checkpointsLoaded} of ${r.kills - r.killsBeforeFirstCheckpoint}`,
    );
    console.log(
      `  resumes: ${r.resumes}; final adapters identical to the uninterrupted run: ${r.identical} of ${r.trials}`,
    );
    for (const problem of r.problems) console.log(`  PROBLEM ${problem}`);
    console.log(
      `  uninterrupted run ${(r.referenceMs / 1000).toFixed(1)} s (spawn included; training ${(r.trainingMs / 1000).toFixed(1)} s for 150 steps); wall ${((Date.now() - started) / 1000).toFixed(1)} s; load average ${one?.toFixed(2)} (1 min), ${five?.toFixed(2)} (5 min)`,
    );
    if (r.problems.length > 0 || r.identical !== r.trials) process.exitCode = 1;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
