#!/usr/bin/env bash
# Spin-threshold sweep: how long the guest lock stress (8 threads x 100 rounds of
# allocation, futex mutex and spawn/join) takes with pv-locks at each threshold,
# and with base ticket locks, on 2 and 4 vCPUs, under TCG. Base and every
# threshold run in the same invocation, interleaved, REPS times.
#
#   results/spin-threshold/sweep.sh [REPS] > results/spin-threshold/sweep.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-3}
cargo build -q --release -p pvbench
pvbench=target/release/pvbench
echo "# $(date -u +%FT%TZ) git=$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)"
echo "# host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -r)"
echo "# $(qemu-system-x86_64 -version | head -1); accel tcg; image $($pvbench build -q | xargs basename)"
echo "# rep vcpus threshold elapsed_s (guest-measured; 'capped' = not done in 150 s)"
for rep in $(seq 1 "$reps"); do
  for vcpus in 2 4; do
    for spin in off 16 64 256 1024 4096 32768; do
      if [ "$spin" = off ]; then args="pvlock=base"; else args="pvlock=pv pvlock.spin=$spin"; fi
      line=$($pvbench boot --accel tcg --vcpus "$vcpus" --timeout 150 -- $args mode=lockstress threads=8 rounds=100 2>&1 \
        | grep -m1 "lockstress threads" || true)
      elapsed=$(sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p' <<<"$line")
      echo "$rep $vcpus $spin ${elapsed:-capped}"
    done
  done
done
