#!/bin/bash
# Hunts guests held longer than they should be: the 1x kernbench-like matrix
# (matrix.toml) with two bursty host-load processes beside it (noise.py;
# `NOISE=0` for none), every guest's QEMU with a QMP socket (wrap.sh) that
# watch.py uses to dump a guest alive after 12 s. Usage, from the repository:
#   results/noise/spinlock-deadlock/run.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
export DEADLOCK_WORK=${DEADLOCK_WORK:-/tmp/pvbench-deadlock}
mkdir -p "$DEADLOCK_WORK"
pids=()
python3 "$here/watch.py" 12 & pids+=($!)
for _ in $(seq "${NOISE:-2}"); do python3 "$here/noise.py" & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
PVBENCH_QEMU="$here/wrap.sh" target/release/pvbench run --matrix "$here/matrix.toml" --accel tcg --out "$out" --quiet >/dev/null || true
echo "held guests: $(grep -c dumped "$DEADLOCK_WORK/watch.log" 2>/dev/null || echo 0) (see $DEADLOCK_WORK)"
