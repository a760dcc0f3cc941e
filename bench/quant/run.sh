#!/usr/bin/env bash
# bench/quant: LoRA training with the frozen base kept compact (baseWeights) vs dequantised to
# f32, each configuration in its own process so peak RSS is its own.
#
#   bench/quant/run.sh gemma   MODEL.gguf         # Gemma 3 270M: stored vs f32, 256 x batch 4
#   bench/quant/run.sh 7b      [MODEL.gguf]       # DeepSeek-7B-shaped Q4_K: 384 x batch 1 x accum 2
#   bench/quant/run.sh 7b-bf16 [MODEL_DIR]        # the same shape as bf16 safetensors (13.8 GB on disk)
#   bench/quant/run.sh decode  MODEL.gguf         # decode tokens/s, stored vs f32
#
# Prints one JSON line per configuration (peak RSS, s/step, tok/s, losses) and the load
# average before and after. STEPS, THREADS (RAYON_NUM_THREADS) override the defaults.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WHAT="${1:?gemma | 7b | 7b-bf16 | decode}"
MODEL="${2:-}"
export RAYON_NUM_THREADS="${THREADS:-$(nproc)}"
(cd "$ROOT/native" && cargo build --quiet --release -p tunekit-core --example quant_bench)
BIN="${CARGO_TARGET_DIR:-$ROOT/native/target}/release/examples/quant_bench"
echo "# $(date -u +%FT%TZ) $(nproc) cores, $RAYON_NUM_THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
case "$WHAT" in
  gemma)
    # BASE_WEIGHTS picks the forms to compare (bf16: the mixed-precision speed option);
    # the stored base also runs once with gradient checkpointing (the ≤ 1 GB configuration).
    for bw in ${BASE_WEIGHTS:-stored f32 bf16}; do
      "$BIN" "$MODEL" --base-weights "$bw" --seq 256 --batch 4 --accum 1 --steps "${STEPS:-3}"
    done
    "$BIN" "$MODEL" --base-weights stored --seq 256 --batch 4 --accum 1 --steps "${STEPS:-3}" --checkpointing
    ;;
  7b)
    if [[ -z "$MODEL" ]]; then
      MODEL="${TMPDIR:-/tmp}/tunekit-deepseek-7b-shape-q4_k.gguf"
      [[ -f "$MODEL" ]] || python3 "$ROOT/scripts/quant/write-7b-gguf.py" "$MODEL"
    fi
    "$BIN" "$MODEL" --base-weights stored --seq 384 --batch 1 --accum 2 --steps "${STEPS:-2}" --checkpointing
    ;;
  7b-bf16)
    if [[ -z "$MODEL" ]]; then
      MODEL="${TMPDIR:-/tmp}/tunekit-deepseek-7b-shape-bf16"
      [[ -f "$MODEL/model.safetensors" ]] || python3 "$ROOT/scripts/quant/write-7b-safetensors.py" "$MODEL"
    fi
    # "stored": the bf16 matrices stay bf16 (13.8 GB instead of 27.6 GB as f32).
    "$BIN" "$MODEL" --base-weights stored --seq 384 --batch 1 --accum 2 --steps "${STEPS:-2}" --checkpointing
    ;;
  decode)
    for bw in stored f32; do
      "$BIN" "$MODEL" --base-weights "$bw" --seq 16 --batch 1 --accum 1 --steps 1 --decode "${TOKENS:-32}"
    done
    ;;
  *) echo "unknown bench $WHAT" >&2; exit 2 ;;
esac
echo "# load after $(cut -d' ' -f1-3 /proc/loadavg)"
