#!/usr/bin/env python3
# QEMU with transparent huge pages disabled for the process (PR_SET_THP_DISABLE, inherited by exec).
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(41, 1, 0, 0, 0) == 0
os.execvp("qemu-system-x86_64", ["qemu-system-x86_64"] + sys.argv[1:])
