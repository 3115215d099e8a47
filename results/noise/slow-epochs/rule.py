#!/usr/bin/env python3
"""What the rerun rule for cells measured apart did to a results directory:
per arm (workload, clients, overcommit, lock mode, migrated), the CV of the
first attempts (what a run without the rule, `apart_reruns = 0`, would have
kept: a set-aside attempt in cells/<id>/apart-1/result.json, else the cell's
result) against that of the cells as the rule left them (cells/<id>.json),
the reruns, and the cells still apart after them. Completed cells only.

    results/noise/slow-epochs/rule.py results/noise/calibration/aa
"""
import glob
import json
import os
import sys
from collections import defaultdict

RATIO = 3.0


def value(c):
    return c["tps"] if c["key"]["workload"] == "pgbench" else c["elapsed_s"]


def readings(c):
    h = c.get("host") or {}
    return h.get("core_to_core_before_ns"), h.get("core_to_core_after_ns")


def cv(xs):
    if len(xs) < 2:
        return float("nan")
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 / abs(m) * 100


cells = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "cells", "*.json"))):
    final = json.load(open(path))
    first_path = os.path.join(path[: -len(".json")], "apart-1", "result.json")
    first = json.load(open(first_path)) if os.path.isfile(first_path) else final
    cells.append((first, final))

# The run's floor: the fastest reading of every attempt, as pvbench's (which
# sees the attempts it kept; a set-aside one is apart, so never the floor).
floor = min(min(r) for f, l in cells for c in (f, l) for r in [readings(c)] if None not in r)
arms = defaultdict(lambda: ([], [], 0, 0))
for first, final in cells:
    if first["status"] != "completed" or final["status"] != "completed":
        continue
    k = final["key"]
    arm = (k["workload"], k.get("clients") or "-", k["overcommit"], k["lock"], bool(k.get("migrated")))
    firsts, finals, reruns, apart = arms[arm]
    firsts.append(value(first))
    finals.append(value(final))
    still = None not in readings(final) and max(readings(final)) > RATIO * floor
    arms[arm] = (firsts, finals, reruns + (final.get("reruns_apart", 0) > 0), apart + still)

print(f"fastest round trip {floor:.1f} ns; apart: a reading over {RATIO * floor:.0f} ns")
print("arm (workload clients overcommit lock migrated): cells, cells rerun, still apart, "
      "CV % of first attempts, CV % after the rule, mean first, mean after")
for arm, (firsts, finals, reruns, apart) in sorted(arms.items(), key=str):
    m = lambda xs: sum(xs) / len(xs)
    print(*arm, len(finals), reruns, apart, f"{cv(firsts):.1f}", f"{cv(finals):.1f}",
          f"{m(firsts):.4g}", f"{m(finals):.4g}")

# The epochs: every attempt (kept or set aside) in time order, by when its
# serial log was written (the end of the cell; a reading before it counts
# one cell wall earlier), each reading near (.) or apart (A).
attempts = []
for path in glob.glob(os.path.join(sys.argv[1], "cells", "*.json")) + glob.glob(
    os.path.join(sys.argv[1], "cells", "*", "apart-*", "result.json")
):
    c = json.load(open(path))
    folder = os.path.dirname(path) if path.endswith("result.json") else path[: -len(".json")]
    log = os.path.join(folder, "bench.serial.log")
    b, a = readings(c)
    if b is None or a is None or not os.path.isfile(log):
        continue
    end = os.path.getmtime(log)
    attempts += [(end - (c.get("cell_wall_s") or 0.0), b), (end, a)]
attempts.sort()
if attempts:
    print("\nreadings in time order (. near, A apart):")
    print("".join("A" if ns > RATIO * floor else "." for _, ns in attempts))
    spans = {True: [], False: []}
    start, state = attempts[0][0], attempts[0][1] > RATIO * floor
    for t, ns in attempts[1:]:
        now = ns > RATIO * floor
        if now != state:
            spans[state].append(t - start)
            start, state = t, now
    fmt = lambda xs: ", ".join(f"{x:.0f}" for x in sorted(xs)) or "-"
    print(f"apart epochs (s, ended within the run): {fmt(spans[True])}")
    print(f"near epochs (s, ended within the run): {fmt(spans[False])}")
