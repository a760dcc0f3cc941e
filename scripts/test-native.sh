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
cd "$root/native"
cargo test -p tunekit-core "$@"
