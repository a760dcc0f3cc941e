#!/usr/bin/env bash
# The quick start's accuracy on unseen data: `tunekit demo` (the demo model, the shipped
# training set) scored on the shipped held-out set and on two held-out sets the generator
# writes with other seeds (no input shared with the training set), for two tuning seeds.
# Prints overall and per-kind exact match, wall time per run and the load average.
#
#   bench/demo-accuracy.sh                    # seeds 7 11, held-out seeds 7 8
#   SEEDS="7" HELDOUT_SEEDS="7 8 9" bench/demo-accuracy.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEEDS="${SEEDS:-7 11}"
HELDOUT_SEEDS="${HELDOUT_SEEDS:-7 8}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
[[ -f dist/cli/main.js ]] || npm run --silent build >/dev/null
sets=(examples/data/increment-heldout.jsonl)
for h in $HELDOUT_SEEDS; do
  npx tsx scripts/make-increment-data.ts --seed "$h" --heldout "$TMP/heldout-seed$h.jsonl" >/dev/null
  sets+=("$TMP/heldout-seed$h.jsonl")
done
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for seed in $SEEDS; do
  for set in "${sets[@]}"; do
    echo "== tuning seed $seed, held-out $(basename "$set")"
    start=$(date +%s.%N)
    node dist/cli/main.js demo --show 0 --seed "$seed" --held-out "$set" --out "$TMP/run" |
      sed -n '/^Held-out exact match/,/^Loss:/p' | grep -v '^Loss:'
    rm -rf "$TMP/run"
    echo "wall $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s, load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
