#!/usr/bin/env bash
# bench/gemma: the seed's increment task on the real Gemma 3 270M (Q4_K_M GGUF), CPU.
#
#   export TUNEKIT_GEMMA_GGUF=/path/gemma-3-270m-q4_k_m.gguf   # see examples/gemma-increment.ts
#   bench/gemma/run.sh                 # both parts
#   PART=task bench/gemma/run.sh       # only the end-to-end task
#   PART=memory bench/gemma/run.sh     # only the maxLength 256 x batch 4 comparison
#   PART=memory PRECISION="stored f32 bf16" REPEATS=1 PROFILE_STEPS=2 bench/gemma/run.sh
#   PART=accuracy bench/gemma/run.sh   # the task twice: base kept stored vs dequantised to f32
#
# 1. task: examples/gemma-increment.ts end to end — held-out exact match before/after LoRA
#    tuning through LocalTuner, wall time, tokens/s, peak RSS (of the whole process, which
#    also holds the base model used for the "before" answers and the tuned model).
# 2. memory: bench/train's epoch on this GGUF with 16 random sequences of 256 tokens, batch 4
#    (the native trainer vs transformers + PEFT loading the same file, same batches), for the
#    peak RSS at maxLength 256 x batch 4 and the throughput ratio.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
: "${TUNEKIT_GEMMA_GGUF:?set TUNEKIT_GEMMA_GGUF to the Gemma 3 270M GGUF (see examples/gemma-increment.ts)}"
PART="${PART:-all}"
echo "Gemma GGUF: $TUNEKIT_GEMMA_GGUF (sha256 $(sha256sum "$TUNEKIT_GEMMA_GGUF" | cut -c1-16)…), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ "$PART" == all || "$PART" == task ]]; then
  (cd "$ROOT" && npm run --silent build:native && npm run --silent build >/dev/null)
  (cd "$ROOT" && npx tsx examples/gemma-increment.ts "$@")
fi
if [[ "$PART" == accuracy ]]; then
  # 3. accuracy: the same tuning (the example's defaults, seed 7) with the Q4_K_M blocks kept
  #    as stored and with the base dequantised to f32, one process each, then both held-out
  #    scores side by side (issue 15: within 2 points).
  # NO_BUILD=1: use the addon and dist/ as they are (e.g. a copy of a built checkout).
  [[ -n "${NO_BUILD:-}" ]] || (cd "$ROOT" && npm run --silent build:native && npm run --silent build >/dev/null)
  LOG="$(mktemp -d)"
  for bw in stored f32; do
    echo "## --base-weights $bw (load $(cut -d' ' -f1-3 /proc/loadavg))"
    (cd "$ROOT" && npx tsx examples/gemma-increment.ts --base-weights "$bw" --skip-before --out "$LOG/$bw" "$@") \
      | tee "$LOG/$bw.log"
  done
  echo "# load after $(cut -d' ' -f1-3 /proc/loadavg)"
  node -e '
    const fs = require("node:fs");
    const rows = process.argv.slice(1).map((f) =>
      JSON.parse(fs.readFileSync(f, "utf8").split("\n").find((l) => l.startsWith("SUMMARY ")).slice(8)));
    const pct = (x) => (x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);
    console.log("| base | held-out after | llama.cpp | tuning s | tokens/s | peak RSS GiB |");
    console.log("|---|---|---|---|---|---|");
    for (const r of rows)
      console.log(`| ${r.baseWeights} | ${pct(r.after)} | ${pct(r.llamaCpp)} | ${r.tuneSeconds} | ${r.tokensPerSecond} | ${(r.peakRssBytes / 2 ** 30).toFixed(2)} |`);
    console.log(`difference (stored − f32): ${((rows[0].after - rows[1].after) * 100).toFixed(1)} points`);
  ' "$LOG/stored.log" "$LOG/f32.log"
fi
if [[ "$PART" == all || "$PART" == memory ]]; then
  # PRECISION lists the native bases (`stored`: the Q4_K_M blocks, the GGUF default, against
  # torch f32; `f32`; `bf16`, against torch autocast bf16). REPEATS as in bench/train (3);
  # PROFILE_STEPS defaults to 0 here.
  MODEL="$TUNEKIT_GEMMA_GGUF" VOCAB=262144 SEQUENCES="${SEQUENCES:-16}" LENGTH=256 BATCH=4 \
    THREADS="${THREADS:-2}" PRECISION="${PRECISION:-stored f32 bf16}" \
    PROFILE_STEPS="${PROFILE_STEPS:-0}" bash "$ROOT/bench/train/run.sh"
fi
