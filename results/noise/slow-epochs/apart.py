#!/usr/bin/env python3
"""Each completed cell of a results directory with its core-to-core readings
(host.core_to_core_{before,after}_ns, recorded since git cdc1908) and whether
it ran with the host's CPUs apart (a reading over 3x the run's fastest, as
pvbench's report judges), then per group the mean figure of near and apart
cells and their ratio, and each arm's CV with and without its cells measured
apart (the figures the README quotes).

    results/noise/slow-epochs/apart.py results/migration/cost-1x-tcg
"""
import glob
import json
import os
import sys
from collections import defaultdict

RATIO = 3.0
cells = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "cells", "*.json"))):
    c = json.load(open(path))
    h = c.get("host") or {}
    b, a = h.get("core_to_core_before_ns"), h.get("core_to_core_after_ns")
    if c.get("status") != "completed" or b is None or a is None:
        continue
    value = c["tps"] if c["key"]["workload"] == "pgbench" else c["elapsed_s"]
    cells.append((c["key"], value, b, a, h.get("reference_before_ms"), h.get("reference_after_ms")))
floor = min(min(b, a) for _, _, b, a, _, _ in cells)
print(f"fastest round trip {floor:.1f} ns; apart: a reading over {RATIO * floor:.0f} ns")
print("workload clients rep lock migrated value c2c_before_ns c2c_after_ns ref_before_ms ref_after_ms apart")
groups = defaultdict(lambda: ([], []))
for k, v, b, a, rb, ra in sorted(cells, key=lambda c: (c[0]["workload"], c[0]["rep"], c[0]["lock"])):
    apart = max(b, a) > RATIO * floor
    group = (k["workload"], k.get("clients"), k["overcommit"])
    groups[group][apart].append(v)
    print(k["workload"], k.get("clients") or "-", k["rep"], k["lock"], bool(k.get("migrated")),
          f"{v:.4g}", f"{b:.0f}", f"{a:.0f}", f"{rb:.2f}", f"{ra:.2f}", "apart" if apart else "near")
print("\ngroup: near cells mean, apart cells mean, apart / near")
for g, (near, apart) in sorted(groups.items(), key=str):
    m = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    print(*g, f"near {len(near)}: {m(near):.4g}", f"apart {len(apart)}: {m(apart):.4g}",
          f"ratio {m(apart) / m(near):.2f}")

# The CV of each arm (group, lock mode, migrated or not) with and without its
# cells measured apart, and of all unmigrated cells of a group together.
def cv(xs):
    if len(xs) < 2:
        return float("nan")
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 / abs(m) * 100


arms = defaultdict(lambda: ([], []))
for k, v, b, a, _, _ in cells:
    group = (k["workload"], k.get("clients"), k["overcommit"])
    apart = max(b, a) > RATIO * floor
    for key in [group + (k["lock"], bool(k.get("migrated")))] + ([group + ("all modes", False)] if not k.get("migrated") else []):
        arms[key][0].append(v)
        if not apart:
            arms[key][1].append(v)
print("\narm (workload clients overcommit lock migrated): CV % of all its cells, CV % without those apart (cells)")
for key, (every, near) in sorted(arms.items(), key=str):
    print(*key, f"{cv(every):.1f} ({len(every)})", f"{cv(near):.1f} ({len(near)})")
