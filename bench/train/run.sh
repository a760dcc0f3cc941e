#!/usr/bin/env bash
# bench/train: one LoRA epoch, native core vs transformers + PEFT (PyTorch CPU), same model,
# data, hyperparameters, batch, length and thread count, in one run. See README.md.
#
#   bench/train/run.sh                     # threads "1 2", 64 sequences x 128 tokens, batch 4
#   THREADS="1" REPEATS=2 SEQUENCES=64 LENGTH=128 BATCH=4 DROPOUT=0 bench/train/run.sh
#
#   PRECISION="f32 bf16" bench/train/run.sh   # also the bf16 base (native baseWeights "bf16", torch autocast bf16)
#   PRECISION="stored f32 bf16" MODEL=/path/model.gguf ...   # also the GGUF's stored blocks (vs torch f32)
#   MODEL=/path/gemma-3-270m-q4_k_m.gguf VOCAB=262144 SEQUENCES=16 LENGTH=256 THREADS=2 bench/train/run.sh
#
# Env: MODEL (a model directory or .gguf; default: the random SmolLM2-135M-shaped model), VOCAB
# (the model's vocabulary size, for the random data), THREADS (list), REPEATS (runs of each side per thread count, alternating order),
# PRECISION (list of stored / f32 / bf16, the native `--base`; default f32. stored = the base as the file
# stores it, e.g. GGUF blocks; its torch baseline is f32), SEQUENCES, LENGTH, BATCH, DROPOUT, CHECKPOINTING=1 (both sides), PROFILE_STEPS (native
# per-phase profile: a separate process per thread count, first step untimed; 0 = off),
# SKIP_BUILD=1, PERF=1 (also `perf record` one native 1-thread epoch, print top symbols).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
THREADS="${THREADS:-1 2}"
REPEATS="${REPEATS:-3}"
PRECISION="${PRECISION:-f32}"
SEQUENCES="${SEQUENCES:-64}"
LENGTH="${LENGTH:-128}"
BATCH="${BATCH:-4}"
DROPOUT="${DROPOUT:-0}"
PROFILE_STEPS="${PROFILE_STEPS:-4}"
CACHE="${TUNEKIT_BENCH_CACHE:-$HOME/.cache/tunekit/bench}"
DEFAULT_MODEL="$CACHE/smollm2-135m-shape-v1"
MODEL="${MODEL:-$DEFAULT_MODEL}"
if [[ -n "${VOCAB:-}" ]]; then
  DATA="$CACHE/train-data-${SEQUENCES}x${LENGTH}-vocab${VOCAB}.json"
else
  DATA="$CACHE/train-data-${SEQUENCES}x${LENGTH}.json"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tunekit/cargo-target}"
BIN="$CARGO_TARGET_DIR/release/examples/train_bench"
CKPT_FLAG=()
[[ "${CHECKPOINTING:-0}" == 1 ]] && CKPT_FLAG=(--checkpointing)

mkdir -p "$CACHE"
if [[ "$MODEL" == "$DEFAULT_MODEL" && ! -f "$MODEL/model.safetensors" ]]; then
  echo "writing the random SmolLM2-135M-shaped model to $MODEL (needs torch + transformers) ..." >&2
  python3 "$HERE/baseline.py" write-model "$MODEL.tmp" \
    --tokenizer-json "$ROOT/test/fixtures/models/llama-tied-gqa/tokenizer.json"
  rm -rf "$MODEL" && mv "$MODEL.tmp" "$MODEL"
fi
[[ -f "$DATA" ]] || python3 "$HERE/baseline.py" write-data "$DATA" --sequences "$SEQUENCES" --length "$LENGTH" \
  ${VOCAB:+--vocab "$VOCAB"}
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  (cd "$ROOT/native" && cargo build --release --example train_bench -p tunekit-core >&2)
fi

# Put the native trainer's epoch-0 batch order into the data, so both sides see the same batches
# (the loss of step 1 then doubles as a check that both compute the same thing).
python3 - "$DATA" "$("$BIN" "$MODEL" "$DATA" --batch "$BATCH" --print-order)" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
data["order"] = json.loads(sys.argv[2])
json.dump(data, open(sys.argv[1], "w"))
PY

OUT="$(mktemp -d)"
# Both sides start from the same adapter (the native trainer's seed-42 initialisation), so their
# losses can agree beyond step 1.
INIT="$OUT/init-adapter"
"$BIN" "$MODEL" "$DATA" --save-init "$INIT" >/dev/null
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
BASELINE_SKIPPED=""

run_native() { # threads rep precision
  local load; load="$(cut -d' ' -f1 /proc/loadavg)"
  RAYON_NUM_THREADS="$1" "$BIN" "$MODEL" "$DATA" --batch "$BATCH" --dropout "$DROPOUT" \
    --profile-steps 0 --base "$3" "${CKPT_FLAG[@]}" >"$OUT/n.json"
  python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); r.update(rep=int(sys.argv[2]), load=float(sys.argv[3])); print(json.dumps(r))' \
    "$OUT/n.json" "$2" "$load" >>"$RESULTS"
}

run_profile() { # threads precision: a separate process, so its per-phase RSS starts from the loaded model
  ((PROFILE_STEPS > 0)) || return 0
  RAYON_NUM_THREADS="$1" "$BIN" "$MODEL" "$DATA" --batch "$BATCH" --dropout "$DROPOUT" --no-epoch \
    --profile-steps "$PROFILE_STEPS" --base "$2" "${CKPT_FLAG[@]}" 2>&1 >"$OUT/p.json" | cat >&2
  python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); r["side"]="native-profile"; print(json.dumps(r))' \
    "$OUT/p.json" >>"$RESULTS"
}

# The torch side of a native precision: `stored` has no torch equivalent (transformers
# dequantises a GGUF to f32 on load), so its baseline is torch f32.
torch_precision() { if [[ "$1" == stored ]]; then echo f32; else echo "$1"; fi; }

run_torch() { # threads rep precision
  [[ -n "$BASELINE_SKIPPED" ]] && return 0
  local tp; tp="$(torch_precision "$3")"
  # With both `stored` and `f32` listed, torch f32 runs once per repeat (in the f32 loop).
  [[ "$3" == stored && " $PRECISION " == *" f32 "* ]] && return 0
  local load rc=0; load="$(cut -d' ' -f1 /proc/loadavg)"
  OMP_NUM_THREADS="$1" MKL_NUM_THREADS="$1" python3 "$HERE/baseline.py" train "$MODEL" "$DATA" \
    --threads "$1" --batch "$BATCH" --dropout "$DROPOUT" --precision "$tp" --init-adapter "$INIT" "${CKPT_FLAG[@]}" >"$OUT/t.json" 2>"$OUT/t.err" || rc=$?
  if [[ $rc == 3 ]]; then BASELINE_SKIPPED="$(cat "$OUT/t.err")"; echo "$BASELINE_SKIPPED" >&2; return 0; fi
  cat "$OUT/t.err" >&2
  [[ $rc == 0 ]] || { echo "baseline failed (exit $rc)" >&2; return 0; }
  python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); r.update(rep=int(sys.argv[2]), load=float(sys.argv[3])); print(json.dumps(r))' \
    "$OUT/t.json" "$2" "$load" >>"$RESULTS"
}

run_sgemm() { # threads: the machine's f32 matmul peak now, as candle (gemm) and torch reach it
  local load; load="$(cut -d' ' -f1 /proc/loadavg)"
  RAYON_NUM_THREADS="$1" "$BIN" --sgemm | tail -n 1 | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["load"]=float(sys.argv[1]); print(json.dumps(r))' "$load" >>"$RESULTS"
  [[ -n "$BASELINE_SKIPPED" ]] && return 0
  OMP_NUM_THREADS="$1" MKL_NUM_THREADS="$1" python3 "$HERE/baseline.py" sgemm --threads "$1" 2>/dev/null | tail -n 1 \
    | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["load"]=float(sys.argv[1]); print(json.dumps(r))' "$load" >>"$RESULTS" || true
}

echo "model $MODEL, data $SEQUENCES x $LENGTH tokens, batch $BATCH, dropout $DROPOUT, threads [$THREADS], precision [$PRECISION], repeats $REPEATS, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for t in $THREADS; do
  for p in $PRECISION; do
    for ((rep = 1; rep <= REPEATS; rep++)); do
      # Alternate which side goes first (native, torch, torch, native, ...), so a load spike does
      # not always hit the same side.
      if ((rep % 2)); then run_native "$t" "$rep" "$p"; run_torch "$t" "$rep" "$p"; else run_torch "$t" "$rep" "$p"; run_native "$t" "$rep" "$p"; fi
    done
  done
  run_sgemm "$t"
  for p in $PRECISION; do run_profile "$t" "$p"; done
done

if [[ "${PERF:-0}" == 1 ]] && command -v perf >/dev/null; then
  PERF_BASE="${PRECISION%% *}"
  RAYON_NUM_THREADS=1 perf record -F 499 -g -o "$OUT/perf.data" "$BIN" "$MODEL" "$DATA" --batch "$BATCH" \
    --dropout "$DROPOUT" --profile-steps 0 --base "$PERF_BASE" "${CKPT_FLAG[@]}" >/dev/null 2>&1 || true
  echo "perf (native, 1 thread, --base $PERF_BASE, one epoch incl. model load), top self-time symbols:"
  perf report -i "$OUT/perf.data" --no-children --sort sym --percent-limit 1.5 --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -25 || true
fi

python3 "$HERE/table.py" "$RESULTS"
[[ -n "$BASELINE_SKIPPED" ]] && echo "(baseline skipped: $BASELINE_SKIPPED)"
echo "raw results: $RESULTS"
