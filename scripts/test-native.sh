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
if [ -n "${TUNEKIT_GEMMA_GGUF:-}" ]; then
  echo "test-native: real Gemma 3 270M checks run on $TUNEKIT_GEMMA_GGUF"
else
  echo "test-native: real Gemma 3 270M checks are skipped (set TUNEKIT_GEMMA_GGUF to the GGUF to run them)"
fi
cd "$root/native"
cargo test -p tunekit-core "$@"
