#!/usr/bin/env bash
# Interleaved boots of the calibration's kernbench-like cell (2 vCPUs, pv,
# scale 10, 4 builds per boot), with and without metrics over virtio-net:
# is a boot's slow mode tied to the network? Appends "ROUND ARM SECONDS"
# (the boot's mean build time, as the guest reports it) to OUT/results.txt.
#
#   results/noise/slow-epochs/boots.sh [ROUNDS]   (default 30; OUT defaults
#   to results/noise/slow-epochs/out)
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build -q --release -p pvbench
pv=target/release/pvbench
out=${OUT:-results/noise/slow-epochs/out}
mkdir -p "$out"
for i in $(seq 1 "${1:-30}"); do
  for arm in metrics none; do
    args=(boot --accel tcg --vcpus 2 --memory 512 --timeout 60)
    if [ "$arm" = metrics ]; then rm -rf "$out/m"; args+=(--metrics "$out/m"); fi
    s=$("$pv" "${args[@]}" -- pvlock=pv pvlock.spin=256 workload=kernbench scale=10 reps=4 vcpus=2 2>/dev/null |
      grep -o 'elapsed_s mean=[0-9.]*' | cut -d= -f2 || true)
    echo "$i $arm ${s:-fail}" >>"$out/results.txt"
  done
done
