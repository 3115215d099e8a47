#!/usr/bin/env python3
"""How far each guest's clock was from the host's, per group of a results directory.

Usage: clock.py RESULTS_DIR [HOST_MHZ]

Every bench guest prints the TSC rate its kernel uses (`tsc_mhz=` in its
serial log). Before pvbench told guests the host's rate (git 719f8f0), Hermit
measured it against three PIT ticks at boot; a guest that measured F MHz on a
host of H MHz timed everything by H/F, so its figures are off by F/H. HOST_MHZ
defaults to the median over the kernbench-like 1x cells (booted with no hog
guests). Prints, per group, the spread of F/H and the kernbench-like mean and
CV as recorded and as corrected by it (pgbench-like tps: by H/F)."""
import glob
import json
import os
import re
import statistics as st
import sys
from collections import defaultdict


def main():
    d = sys.argv[1]
    cells = []
    for f in sorted(glob.glob(os.path.join(d, "cells", "*.json"))):
        cid = os.path.basename(f)[:-5]
        log = os.path.join(d, "cells", cid, "bench.serial.log")
        if not os.path.exists(log):
            continue
        m = re.search(r"tsc_mhz=(\d+)", open(log).read())
        c = json.load(open(f))
        if m and c["status"] == "completed":
            cells.append((cid, c, int(m.group(1))))
    if len(sys.argv) > 2:
        host = float(sys.argv[2])
    else:
        host = st.median(m for cid, c, m in cells if cid.startswith("kernbench-1x"))
    print(f"host TSC rate {host:.0f} MHz; factor = guest's rate / host's (1.000 = right clock)")
    groups = defaultdict(list)
    for cid, c, mhz in cells:
        k = c["key"]
        name = f'{k["workload"]} {k["overcommit"]}'
        if k.get("clients"):
            name += f' c{k["clients"]}'
        groups[(name, k["lock"])].append((c, mhz / host))
    print(f'{"group":<18} {"lock":<8} {"n":>3} {"factor min":>10} {"max":>6} {">2% off":>7}'
          f' {"mean as recorded (CV)":>22} {"corrected (CV)":>18}')
    for (name, lock), v in sorted(groups.items()):
        fs = [f for _, f in v]
        if name.startswith("kernbench"):
            rec = [c["elapsed_s"] for c, _ in v]
            cor = [c["elapsed_s"] * f for c, f in v]
        else:
            rec = [c["tps"] for c, _ in v]
            cor = [c["tps"] / f for c, f in v]
        cv = lambda x: st.stdev(x) / st.mean(x) * 100 if len(x) > 1 else 0.0
        print(f"{name:<18} {lock:<8} {len(v):>3} {min(fs):>10.3f} {max(fs):>6.3f}"
              f" {sum(abs(f - 1) > 0.02 for f in fs):>7}"
              f" {st.mean(rec):>14.4g} ({cv(rec):4.1f}%) {st.mean(cor):>10.4g} ({cv(cor):4.1f}%)")


main()
