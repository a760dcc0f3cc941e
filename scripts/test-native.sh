#!/usr/bin/env bash
# Runs the Rust core's tests: numerical parity with transformers on test/fixtures/models,
# malformed-file and fuzz tests, generation and sampling units.
# Uses the same CARGO_TARGET_DIR default as build-native.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  CARGO_TARGET_DIR="${HOME:-/nonexistent}/.cache/tunekit/cargo-target"
  if ! mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || [ ! -w "$CARGO_TARGET_DIR" ]; then
    CARGO_TARGET_DIR="$root/native/target"
  fi
fi
export CARGO_TARGET_DIR
# Optional inputs are decided when the tests are built (native/core/build.rs): a test whose
# input is missing is compiled as ignored, so cargo's summary counts it as ignored.
if [ -n "${TUNEKIT_GEMMA_GGUF:-}" ]; then
  echo "test-native: real Gemma 3 270M checks run on $TUNEKIT_GEMMA_GGUF"
else
  echo "test-native: real Gemma 3 270M checks are ignored (set TUNEKIT_GEMMA_GGUF to the GGUF to run them)"
fi
# TUNEKIT_PYTHON= (empty) turns the Python interop checks off explicitly.
if [ -z "${TUNEKIT_PYTHON+set}" ] && command -v python3 >/dev/null 2>&1 \
  && python3 -c "import torch, transformers, peft" >/dev/null 2>&1; then
  export TUNEKIT_PYTHON=python3
fi
if [ -n "${TUNEKIT_PYTHON:-}" ]; then
  echo "test-native: Python PEFT interop checks run with $TUNEKIT_PYTHON"
else
  echo "test-native: Python PEFT interop checks are ignored (no python3 with torch, transformers and peft)"
fi
cd "$root/native"
cargo test -p tunekit-core "$@"
