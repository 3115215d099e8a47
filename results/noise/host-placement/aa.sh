#!/bin/bash
# aa.sh ROUNDS OUT COND...: COND is default, nothp (QEMU without transparent huge pages) or pin
# (vCPU thread N pinned to host core N mod 2); one boot of each per round, the order rotating.
# Booted the image of git 169f9d1 (before the allocator fix) at kernbench-like scale 1.
here=$(cd "$(dirname "$0")" && pwd)
rounds=$1; out=$2; shift 2; conds=("$@"); n=${#conds[@]}
for r in $(seq 1 $rounds); do
  for j in $(seq 0 $((n-1))); do
    c=${conds[$(( (r + j) % n ))]}
    case $c in default) q=/usr/bin/qemu-system-x86_64;; nothp) q=$here/nothp.py;; pin) q=$here/pin.sh;; *) q=$here/$c;; esac
    d=$(mktemp -d)
    line=$(PVBENCH_QEMU=$q flock /tmp/cpu.lock $here/../../../target/release/pvbench boot --accel tcg --vcpus 2 --network --metrics $d --quiet -- pvlock=pv pvlock.spin=256 workload=kernbench scale=1 reps=${REPS:-1} >/dev/null 2>&1; python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['done']['result'].split('elapsed_s ')[1].split(' done')[0])" $d/boot.json 2>&1)
    echo -e "$c\t$r\t$line" >> $out
    rm -rf "$d"
  done
done
