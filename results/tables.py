#!/usr/bin/env python3
"""The README's result tables, made from `pvbench report --json` of a results
directory, so that every figure in them traces back to the cells.

    results/tables.py results/full-tcg-2vcpu [PVBENCH]

Prints Markdown: kernbench-like per lock mode and overcommit (mean (sd), >= for
runs at the cap), each mode against base (% improvement, the 95% verdict and
its resolution), each mode's slowdown against its own 1x (the seed's measure),
pgbench-like per client count, the CPU share each mode kept, kick-to-wake
latency and provenance. Only reads; the report itself is pvbench's.
"""
import json
import subprocess
import sys


def report(results_dir, pvbench):
    out = subprocess.run(
        [pvbench, "report", "--json", "--no-plots", results_dir],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def num(x):
    """Three significant figures, as a table reads them."""
    if x is None:
        return "-"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def arm_cell(arm):
    s = arm["stats"]
    if s["n"] == 0:
        return "no runs"
    if s["censored"]:
        return f">= {num(s['mean']['lo'])} ({s['censored']} of {s['n']} at the cap)"
    note = f", {s['n']} runs" if s["n"] != 5 else ""
    sd = num(s["stddev"]) if s["stddev"] is not None else "-"
    return f"{num(s['mean']['lo'])} ({sd}){note}"


def verdict_cell(row, unit_better):
    v = row["verdict"]
    kind = v["kind"]
    if kind == "too_few":
        return "too few runs"
    if kind == "student":
        pct = v["improvement_percent"]
        if v["proven"]:
            word = f"{row['arm']['lock']} {unit_better}" if pct > 0 else f"base {unit_better}"
            text = f"{pct:+.1f}% +/- {v['improvement_half_width_percent']:.1f}, {word}"
        else:
            text = f"{pct:+.1f}%, none proven"
        if row.get("mde_pct") is not None:
            text += f" (MDE {row['mde_pct']:.0f}%)"
        return text
    lo, hi = v["improvement_percent"]["lo"], v["improvement_percent"]["hi"]
    if lo is None:
        pct = "unbounded"
    elif hi is None or hi >= 100:
        pct = f">= {lo:+.0f}%"
    else:
        pct = f"{lo:+.0f}..{hi:+.0f}%"
    if v["proven"]:
        word = f"{v['better']} {unit_better}, rank p = {v['gehan_p']:.3f}"
    elif v["gehan_p"] is not None and v["min_p"] >= 0.05:
        word = f"cannot be proven with these runs (min p {v['min_p']:.2f})"
    else:
        word = f"none proven (rank p = {v['gehan_p']:.2f})"
    return f"{pct}, {word}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def kernbench(rep):
    locks = rep["locks"]
    rows, vs, slow = [], [], []
    ones = {}
    for g in rep["kernbench"]:
        oc = g["group"]["overcommit"]
        arms = {g["base"]["lock"]: g["base"]} | {m["arm"]["lock"]: m["arm"] for m in g["modes"]}
        rows.append([oc] + [arm_cell(arms[l]) if l in arms else "-" for l in locks])
        modes = {m["arm"]["lock"]: m for m in g["modes"]}
        vs.append([oc] + [verdict_cell(modes[l], "faster") if l in modes else "-" for l in locks[1:]])
        means = {l: arms[l]["stats"]["mean"]["lo"] for l in arms if arms[l]["stats"]["n"]}
        capped = {l: arms[l]["stats"]["censored"] > 0 for l in arms}
        if oc == "1x":
            ones = means
        elif ones:
            slow.append([oc] + [
                ((">= " if capped[l] else "") + f"{means[l] / ones[l]:.1f}x") if l in means and l in ones else "-"
                for l in locks
            ])
    cap = rep["kernbench"][0]["cap_s"] if rep["kernbench"] else None
    out = [f"kernbench-like, elapsed seconds, mean (sd) of 5 runs unless noted (cap {num(cap)} s):", "",
           table([""] + locks, rows), "",
           "Against base: % improvement of the means, the 95% verdict (Student's t; Gehan's rank test "
           "where runs hit the cap) and the minimum detectable effect (80% power):", "",
           table([""] + locks[1:], vs)]
    if slow:
        out += ["", "Each mode against its own 1x (the seed: base 20x / 63x, pv 3.4x / 3.0x at 2x / 3x):", "",
                table([""] + locks, slow)]
    return "\n".join(out)


def pgbench(rep):
    if not rep["pgbench"]:
        return ""
    locks = rep["locks"]
    rows, vs = [], []
    for g in rep["pgbench"]:
        c = str(g["group"]["clients"])
        arms = {g["base"]["lock"]: g["base"]} | {m["arm"]["lock"]: m["arm"] for m in g["modes"]}
        rows.append([c] + [arm_cell(arms[l]) if l in arms else "-" for l in locks])
        modes = {m["arm"]["lock"]: m for m in g["modes"]}
        vs.append([c] + [verdict_cell(modes[l], "more tps") if l in modes else "-" for l in locks[1:]])
    return "\n".join([
        "pgbench-like at 1x, transactions per second, mean (sd):", "",
        table(["clients"] + locks, rows), "",
        "Against base (% more tps, 95% Student's t, MDE):", "",
        table(["clients"] + locks[1:], vs)])


def cpu(rep):
    rows = []
    for r in rep["cpu"]:
        g = r["group"]
        if g["workload"] != "kernbench" or g["overcommit"] == "1x":
            continue
        hog = f"{100 * r['hog_share'] / r['fair_share']:.0f}%" if r.get("hog_share") is not None else "-"
        rows.append([g["overcommit"], r["lock"], f"{100 * r['bench_vs_fair']:.0f}%", hog,
                     f"{100 * r['bench_run_delay']:.0f}%" if r.get("bench_run_delay") is not None else "-"])
    return "\n".join([
        "CPU over the measured builds against the fair share (host cores / guests), and the share of "
        "time a bench vCPU thread was runnable but waiting for a host core:", "",
        table(["overcommit", "lock", "bench / fair", "hog / fair", "bench run delay"], rows)])


def kick_wake(rep):
    if not rep["kick_wake"]:
        return ""
    rows = []
    for r in rep["kick_wake"]:
        g = r["group"]
        name = g["workload"] + (f" c{g['clients']}" if g["clients"] else "")
        rows.append([name, g["overcommit"], r["lock"], f"{r['kicks'] / max(r['runs'], 1):.0f}",
                     num(r["p50"] / 1e3), num(r["p90"] / 1e3), num(r["p99"] / 1e3), num(r["max"] / 1e3)])
    return "\n".join(["Kick-to-wake latency (us, from the kick to the woken waiter running again):", "",
                      table(["workload", "overcommit", "lock", "kicks per run", "p50", "p90", "p99", "max"], rows)])


def provenance(rep):
    p = rep["provenance"]
    c = rep["cells"]
    t = rep.get("time") or {}
    return (f"{p['host_cpu']}, {p['host_cores']} cores, {p['accel'].upper()}, {p['qemu']}; guest image "
            f"{p['image_id']}, git {p['git_revision'][:12]}; cells: {c['planned']} planned, {c['completed']} "
            f"completed, {c['censored']} censored, {c['failed']} failed, {c['missing']} missing; measured "
            f"{t.get('measured_s', 0) / max(t.get('cell_wall_s', 1), 1e-9) * 100:.0f}% of the cells' wall time.")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    rep = report(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "target/release/pvbench")
    parts = [provenance(rep), kernbench(rep), pgbench(rep), cpu(rep), kick_wake(rep)]
    print("\n\n".join(p for p in parts if p))


if __name__ == "__main__":
    main()
