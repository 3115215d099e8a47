#!/usr/bin/env python3
"""The bench guest's CPU against its fair share, per overcommit and lock mode,
over the measured work, for kernbench-like cells measured with the host's CPUs
near and apart (a core-to-core reading over 3x the run's fastest), kept cells
and set-aside attempts (cells/<id>/apart-N/) alike: whether the shares the
README quotes depend on where the host put the CPUs. Completed cells only.

    results/noise/slow-epochs/share.py results/full-tcg-2vcpu
"""
import glob
import json
import os
import sys
from collections import defaultdict

RATIO = 3.0
attempts = []
for path in glob.glob(os.path.join(sys.argv[1], "cells", "*.json")) + glob.glob(
    os.path.join(sys.argv[1], "cells", "*", "apart-*", "result.json")
):
    c = json.load(open(path))
    h = c.get("host") or {}
    b, a = h.get("core_to_core_before_ns"), h.get("core_to_core_after_ns")
    if c["key"]["workload"] != "kernbench" or c["status"] != "completed" or b is None or a is None:
        continue
    attempts.append((c, b, a))
if not attempts:
    sys.exit("no completed kernbench-like cells with core-to-core readings")
floor = min(min(b, a) for _, b, a in attempts)
cores = json.load(open(os.path.join(sys.argv[1], "run.json")))["provenance"]["host_cores"]
shares = defaultdict(list)
for c, b, a in attempts:
    bench = next(g for g in c["guests"] if g["role"] == "bench")
    guests = {"1x": 1, "2x": 2, "3x": 3}[c["key"]["overcommit"]]
    fair = min(1.0, cores / (guests * bench["vcpus"])) * bench["vcpus"]
    apart = max(b, a) > RATIO * floor
    shares[(c["key"]["overcommit"], c["key"]["lock"], apart)].append(bench["cpu_s"] / bench["wall_s"] / fair)

print(f"fastest round trip {floor:.1f} ns; apart: a reading over {RATIO * floor:.0f} ns")
print("overcommit lock: bench CPU / fair share, near (cells) | apart (cells)")
for oc, lock in sorted({(k[0], k[1]) for k in shares}):
    cell = lambda xs: f"{100 * sum(xs) / len(xs):.0f}% ({len(xs)})" if xs else "-"
    print(oc, lock, cell(shares[(oc, lock, False)]), "|", cell(shares[(oc, lock, True)]))
