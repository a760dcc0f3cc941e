#!/usr/bin/env bash
# Builds the Node addon (native/node, crate tunekit-node) from source and copies it to
# native/tunekit.<platform>-<arch>.node, where src/local/native.ts looks for it.
#
#   scripts/build-native.sh          # release build (what users and CI run)
#   scripts/build-native.sh --dev    # debug build of our crates, dependencies still -O3
#
# CARGO_TARGET_DIR defaults to $HOME/.cache/tunekit/cargo-target so rebuilds are warm across
# checkouts; if that cannot be created the build falls back to native/target (cold, slower).
# Needs: Rust (native/rust-toolchain.toml pins the version) and a C compiler (oniguruma).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
profile=release
for arg in "$@"; do
  case "$arg" in
    --dev) profile=dev ;;
    --release) profile=release ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "build-native: unknown argument '$arg' (expected --dev or --release)" >&2; exit 2 ;;
  esac
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "build-native: cargo not found. Install Rust from https://rustup.rs and rerun 'npm run build:native'." >&2
  exit 1
fi

if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  CARGO_TARGET_DIR="${HOME:-/nonexistent}/.cache/tunekit/cargo-target"
  if ! mkdir -p "$CARGO_TARGET_DIR" 2>/dev/null || [ ! -w "$CARGO_TARGET_DIR" ]; then
    echo "build-native: cannot use $CARGO_TARGET_DIR; building in native/target instead (cold build)" >&2
    CARGO_TARGET_DIR="$root/native/target"
  fi
fi
export CARGO_TARGET_DIR

out_dir=release
[ "$profile" = dev ] && out_dir=debug

start=$(date +%s)
(cd "$root/native" && cargo build -p tunekit-node --profile "$profile")

case "$(uname -s)" in
  Linux) lib="libtunekit_node.so"; platform=linux ;;
  Darwin) lib="libtunekit_node.dylib"; platform=darwin ;;
  MINGW*|MSYS*|CYGWIN*) lib="tunekit_node.dll"; platform=win32 ;;
  *) echo "build-native: unsupported OS $(uname -s)" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac

dest="$root/native/tunekit.$platform-$arch.node"
# Copy to a temp name and rename, so a running process never sees a half-written addon.
cp "$CARGO_TARGET_DIR/$out_dir/$lib" "$dest.tmp"
mv -f "$dest.tmp" "$dest"
echo "build-native: $profile build -> ${dest#"$root"/} in $(( $(date +%s) - start ))s (target dir $CARGO_TARGET_DIR)"
