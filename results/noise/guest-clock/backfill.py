#!/usr/bin/env python3
"""Record in run.json the TSC rate the guests of an existing run were given.

    results/noise/guest-clock/backfill.py DIR...

Runs made between git 719f8f0 (every guest told the host's TSC rate with
`-freq`) and the commit that records that rate in the provenance
(`guest_tsc_mhz`) carry the rate only in their serial logs: the report would
warn that their guests calibrated their own clocks. This writes the rate into
run.json (and each merged shard's record) when, and only when, the evidence
holds: the run's revision descends from 719f8f0 and every cell's bench serial
log reports one and the same `tsc_mhz`. Anything else is refused with the
reason; run.json is replaced atomically.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

FIX = "719f8f02"


def descends_from_fix(revision):
    rev = revision.removesuffix("-dirty")
    return subprocess.run(["git", "merge-base", "--is-ancestor", FIX, rev],
                          capture_output=True).returncode == 0


def backfill(d):
    path = os.path.join(d, "run.json")
    with open(path) as f:
        manifest = json.load(f)
    prov = manifest["provenance"]
    if "guest_tsc_mhz" in prov:
        return f"already records {prov['guest_tsc_mhz']} MHz"
    revisions = [prov["git_revision"]]
    sharding = manifest.get("sharding") or {}
    revisions += [s["git_revision"] for s in sharding.get("shards", [])]
    old = [r for r in revisions if not descends_from_fix(r)]
    if old:
        sys.exit(f"{d}: revision {old[0]} predates {FIX}: its guests calibrated their own clocks")
    rates, logs = set(), 0
    cells = os.path.join(d, "cells")
    for cell in sorted(os.listdir(cells)):
        log = os.path.join(cells, cell, "bench.serial.log")
        if not os.path.isfile(log):
            continue
        logs += 1
        with open(log, errors="replace") as f:
            found = set(re.findall(r" tsc_mhz=(\d+) ", f.read()))
        if len(found) != 1:
            sys.exit(f"{log}: {len(found)} tsc_mhz readings, expected one")
        rates |= found
    if len(rates) != 1:
        sys.exit(f"{d}: the guests report {sorted(rates) or 'no'} TSC rates, expected one")
    mhz = int(rates.pop())
    prov["guest_tsc_mhz"] = mhz
    for s in sharding.get("shards", []):
        s["guest_tsc_mhz"] = mhz
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".run.json.")
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return f"{mhz} MHz, from {logs} bench serial logs"


for d in sys.argv[1:] or sys.exit(__doc__):
    print(f"{d}: {backfill(d)}")
