/**
 * Remote tuning under injected faults, full size: at least 300 Gemini and 150 Vertex AI
 * create/poll faults with every timing (lost answers, slow services acting after the client's
 * timeout, 429/503 with Retry-After of 0 or 1 s, connection resets; Gemini trials also meet
 * older models holding the requested id). Prints the counts that must be zero — duplicates,
 * false attaches, untyped errors — beside the outcomes, the wall time and the load average.
 *
 *   npx tsx bench/reliability/remote.ts [geminiTrials=240] [vertexTrials=120] [seed=2026]
 *
 * Exits 1 when any must-be-zero count is not zero or a fault floor is not reached.
 */
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import {
  runGeminiTrials,
  runVertexTrials,
  summarize,
  type TrialOptions,
  type TrialSummary,
} from "../../test/reliability/remote-harness.js";

const geminiTrials = Number(process.argv[2] ?? 240);
const vertexTrials = Number(process.argv[3] ?? 120);
const seed = Number(process.argv[4] ?? 2026);

const options: TrialOptions = {
  seed,
  attemptTimeoutMs: 150,
  retryAfterSeconds: [0, 0, 1],
  createRecoveryMs: 800,
};

function report(name: string, summary: TrialSummary, seconds: number): void {
  console.log(`\n${name}: ${summary.trials} trials in ${seconds.toFixed(1)} s`);
  console.log(`  faults that hit a request: ${summary.faultsHit}`);
  for (const [kind, hits] of Object.entries(summary.faultsByKind).sort()) {
    console.log(`    ${kind.padEnd(16)} ${hits}`);
  }
  console.log(
    `  outcomes: ${Object.entries(summary.outcomes)
      .sort()
      .map(([outcome, n]) => `${outcome} ${n}`)
      .join(", ")}`,
  );
  console.log(`  duplicates: ${summary.duplicates}`);
  console.log(`  false attaches: ${summary.falseAttaches}`);
  console.log(`  untyped errors: ${summary.untypedErrors}`);
  if (name.startsWith("Gemini")) {
    console.log(
      `  trials where an older model held the requested id: ${summary.preexistingTrials} (refused with ALREADY_EXISTS: ${summary.preexistingRefused}, taken for the job: ${summary.preexistingAttached})`,
    );
  }
}

console.log(
  `remote fault injection: seed ${seed}, attempt timeout ${options.attemptTimeoutMs} ms, Retry-After ${options.retryAfterSeconds.join("/")} s, load ${loadavg()
    .map((n) => n.toFixed(2))
    .join(" ")}`,
);
let started = performance.now();
const gemini = summarize(await runGeminiTrials(geminiTrials, options));
report("Gemini API", gemini, (performance.now() - started) / 1000);
started = performance.now();
const vertex = summarize(await runVertexTrials(vertexTrials, options));
report("Vertex AI", vertex, (performance.now() - started) / 1000);
console.log(
  `\nload after: ${loadavg()
    .map((n) => n.toFixed(2))
    .join(" ")}`,
);

const failures = [
  gemini.faultsHit < 300 ? `only ${gemini.faultsHit} Gemini faults (need ≥ 300)` : "",
  vertex.faultsHit < 150 ? `only ${vertex.faultsHit} Vertex faults (need ≥ 150)` : "",
  ...[gemini, vertex].flatMap((s) => [
    s.duplicates ? `${s.duplicates} duplicates` : "",
    s.falseAttaches ? `${s.falseAttaches} false attaches` : "",
    s.untypedErrors ? `${s.untypedErrors} untyped errors` : "",
    s.preexistingAttached ? `${s.preexistingAttached} older models attached` : "",
  ]),
].filter(Boolean);
if (failures.length > 0) {
  console.log(`\nFAILED: ${failures.join("; ")}`);
  process.exit(1);
}
console.log("\nOK: every count that must be zero is zero");
