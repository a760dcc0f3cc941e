#!/usr/bin/env bash
# Builds the Node addon (native/node, crate tunekit-node) with @napi-rs/cli, for contributors:
#   native/tunekit.<platform-arch-abi>.node   the addon, e.g. tunekit.linux-x64-gnu.node
#   native/binding.cjs, native/binding.d.cts  napi-rs's generated loader and binding types
# The loader and the types are committed: after changing a #[napi] export, run this and commit
# both (CI rebuilds them and fails when the committed ones differ).
#
#   scripts/build-native.sh          # release build (what CI and the packages use)
#   scripts/build-native.sh --dev    # debug build of our crates, dependencies still -O3
#
# CARGO_TARGET_DIR defaults to $HOME/.cache/tunekit/cargo-target so rebuilds are warm across
# checkouts; if that cannot be created the build falls back to native/target (cold, slower).
# Needs: Rust (native/rust-toolchain.toml), a C compiler (oniguruma) and `npm ci` (the napi CLI).
# An installed package builds without the napi CLI: `npx tunekit build-native`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
release=(--release)
for arg in "$@"; do
  case "$arg" in
    --dev) release=() ;;
    --release) release=(--release) ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "build-native: unknown argument '$arg' (expected --dev or --release)" >&2; exit 2 ;;
  esac
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "build-native: cargo not found. Install Rust from https://rustup.rs and rerun 'npm run build:native'." >&2
  exit 1
fi
napi="$root/node_modules/.bin/napi"
if [ ! -x "$napi" ]; then
  echo "build-native: the napi CLI is missing; run 'npm ci' first." >&2
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

start=$(date +%s)
cd "$root"
"$napi" build --platform "${release[@]}" \
  --manifest-path native/node/Cargo.toml --package-json-path package.json \
  --output-dir native --js binding.cjs --dts binding.d.cts
echo "build-native: ${release[*]:-dev} build -> native/ in $(( $(date +%s) - start ))s (target dir $CARGO_TARGET_DIR)"
