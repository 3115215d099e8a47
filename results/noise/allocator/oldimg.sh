#!/bin/bash
# QEMU that boots $OLD_APP (an app.elf built before the allocator fix, e.g. at git 169f9d1 with
# `pvbench build`) instead of the image pvbench passes with -initrd.
args=(); swap=0
for a in "$@"; do
  if [ $swap = 1 ]; then args+=("$OLD_APP"); swap=0; continue; fi
  [ "$a" = "-initrd" ] && swap=1
  args+=("$a")
done
exec qemu-system-x86_64 "${args[@]}"
