#!/bin/bash
# PVBENCH_QEMU wrapper: one QMP socket per QEMU, named by its pid (exec keeps
# the pid), for watch.py.
W=${DEADLOCK_WORK:-/tmp/pvbench-deadlock}
S=$W/sock/q-$$.sock
mkdir -p "$W/sock"; rm -f "$S"
exec qemu-system-x86_64 "$@" -qmp "unix:$S,server=on,wait=off"
