#!/bin/bash
# The allocator fix, before and after, interleaved in one run:
#   OLD_APP=/path/to/old/app.elf results/noise/allocator/ab.sh ROUNDS OUT.tsv COND...
# COND names a line of conds.tsv: name, OLD (boot OLD_APP) or NEW (the current image), the
# `pvbench boot` arguments. One boot of each condition per round, the order rotating; each line
# of OUT is the condition, the round, the guest's result line and its pv-lock halts.
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../../.." && pwd)
rounds=$1; out=$2; shift 2; conds=("$@"); n=${#conds[@]}
tmp=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  for j in $(seq 0 $((n-1))); do
    c=${conds[$(( (r + j) % n ))]}
    IFS=$'\t' read -r _ which args < <(grep -P "^$c\t" "$here/conds.tsv")
    case $which in OLD) q=$here/oldimg.sh;; *) q=$(command -v qemu-system-x86_64);; esac
    rm -rf "$tmp/m"
    # shellcheck disable=SC2086 # the arguments are words
    PVBENCH_QEMU=$q "$root/target/release/pvbench" boot --accel tcg --network --metrics "$tmp/m" --quiet $args >/dev/null 2>&1
    line=$(python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));print(d["done"]["result"], "halted=%s" % d["lock"].get("halted"))' "$tmp/m/boot.json" 2>&1)
    echo -e "$c\t$r\t$line" >> "$out"
  done
done
rm -rf "$tmp"
