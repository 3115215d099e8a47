#!/usr/bin/env bash
# Cost of the foundation: clean guest-image build, cached build, and time from
# starting QEMU to the guest application's first line under TCG (2 vCPUs), each
# as the median of N runs.
#
#   results/boot/measure.sh [N] > results/boot/measure.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-5}
cargo build -q --release -p pvbench
pvbench=target/release/pvbench
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'; }
echo "# $(date -u +%FT%TZ) git=$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)"
echo "# host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(qemu-system-x86_64 -version | head -1); accel tcg"
clean=$(for i in $(seq 1 "${CLEAN_RUNS:-1}"); do rm -rf target/guest target/pvbench/images; secs $pvbench build -q; done | median)
echo "clean_build_s $clean"
cached=$(for i in $(seq 1 "$n"); do secs $pvbench build -q; done | median)
echo "cached_build_s $cached"
first=$(for i in $(seq 1 "$n"); do
  $pvbench boot --accel tcg --vcpus 2 --quiet -- mode=hello 2>&1 | sed -n 's/.*first guest line after \([0-9.]*\) s.*/\1/p'
done | median)
echo "boot_to_first_line_s_2vcpus $first"
wall=$(for i in $(seq 1 "$n"); do secs $pvbench boot --accel tcg --vcpus 2 --quiet -- mode=hello; done | median)
echo "pvbench_boot_wall_s_2vcpus $wall"
