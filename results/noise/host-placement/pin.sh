#!/bin/bash
# QEMU whose vCPU thread N is pinned to host core N mod 2.
( for _ in $(seq 1 200); do
    sleep 0.02
    n=0
    for t in /proc/$$/task/*; do
      c=$(cat $t/comm 2>/dev/null)
      case "$c" in "CPU "*"/TCG") k=${c#CPU }; k=${k%/TCG}; taskset -p -c $((k % 2)) ${t##*/} >/dev/null 2>&1; n=$((n+1));; esac
    done
    [ $n -ge 2 ] && break
  done ) &
exec qemu-system-x86_64 "$@"
