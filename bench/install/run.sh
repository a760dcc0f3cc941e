#!/usr/bin/env bash
# What a user downloads and waits for: packs tunekit and this platform's addon package as they
# are published (scripts/package/pack.ts, which prints their packed and unpacked sizes), then
# in a fresh empty project times `npm install <both tarballs>` and `npx tunekit demo`, with no
# Rust on PATH. npm's cache is whatever this machine has (after `npm ci` it holds tunekit's
# dependencies, so the install step measures unpacking and linking, not downloading).
#
#   bash bench/install/run.sh        # needs `npm ci`, `npm run build:native`
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tunekit-install-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "load before: $(uptime)"
(cd "$root" && npm run --silent build >/dev/null)
echo "== packed packages"
(cd "$root" && npx tsx scripts/package/pack.ts --out "$work/packages")
tarballs=$(node -e 'for (const p of require(process.argv[1])) console.log(p.tarball)' "$work/packages/packages.json")

mkdir "$work/project"
cd "$work/project"
echo '{"name":"install-bench","private":true}' > package.json
no_rust_path=$(tr ':' '\n' <<<"$PATH" | while read -r dir; do
  [ -n "$dir" ] && [ ! -x "$dir/cargo" ] && [ ! -x "$dir/rustc" ] && echo "$dir"
done | paste -sd:)

now() { date +%s.%N; }
t0=$(now)
# shellcheck disable=SC2086 # one tarball path per word
PATH="$no_rust_path" npm install --no-audit --no-fund --prefer-offline $tarballs >/dev/null
t1=$(now)
PATH="$no_rust_path" npx tunekit demo --out runs/demo >"$work/demo.log"
t2=$(now)
grep -E "Held-out exact match" "$work/demo.log"
du -sk node_modules/tunekit node_modules/tunekit-* | awk '{ printf "installed %-40s %6.2f MiB\n", $2, $1 / 1024 }'
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "npm install (both tarballs):   %6.1f s\n", b - a;
  printf "npx tunekit demo:              %6.1f s\n", c - b;
  printf "npm install -> end of demo:    %6.1f s\n", c - a }'
echo "load after: $(uptime)"
