#!/usr/bin/env bash
# Uncontended lock + unlock of every lock mode against Hermit 0.11's own ticket
# lock (crates.io hermit-sync 0.1), in one run on the host (native, one
# thread): writes results/locks/uncontended.txt with the machine and git
# revision. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=results/locks/uncontended.txt
cargo build -q --release -p pvlock --example uncontended
{
  echo "# $(date -u +%FT%TZ) git=$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)"
  echo "# host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# command: cargo run --release -p pvlock --example uncontended"
  # Three runs: hermit-sync's own lock lands at ~14.5 or ~17.5 ns per pair
  # from one run of the same binary to the next, and one run would hide it.
  for run in 1 2 3; do
    echo "## run $run"
    target/release/examples/uncontended
  done
} >"$out.tmp"
mv "$out.tmp" "$out"
cat "$out"
