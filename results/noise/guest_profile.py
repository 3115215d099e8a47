#!/usr/bin/env python3
"""Where a guest's vCPUs spend their time: a sampling profile of a TCG (or KVM) guest.

    results/noise/guest_profile.py --hz 200 --out PROFILE.txt -- \
        target/release/pvbench boot --accel tcg --vcpus 1 -- workload=kernbench scale=100 reps=1

runs the pvbench command with QEMU wrapped (PVBENCH_QEMU points at this script), so that the
guest's QEMU gets one more QMP socket; a sampler thread asks it for every vCPU's registers
(`info registers -a`) HZ times a second until QEMU exits, and the RIPs are counted by the
function of the guest image's app.elf they fall in (the loader puts the image at 0x400000;
kernel symbols carry the `__pvbench_kernel_` prefix). Halted vCPUs count as `<halted>`.

Each sample stops the vCPUs briefly (QEMU takes its big lock), so the profile costs the guest a
few per cent at 200 Hz; it says where the time goes, not how long the run took.
"""

import argparse
import bisect
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

LOAD_BASE = 0x400000
KERNEL_PREFIX = "__pvbench_kernel_"


def qemu_wrapper(args):
    """Acts as QEMU: the real one, plus a QMP socket for the sampler."""
    sock = os.environ["PVBENCH_PROFILE_SOCK"]
    qemu = os.environ.get("PVBENCH_PROFILE_QEMU", "qemu-system-x86_64")
    os.execvp(qemu, [qemu, *args, "-qmp", f"unix:{sock},server=on,wait=off"])


def sample(sock_path, hz, samples, stop):
    """Appends (cpu, rip, halted) until QEMU goes away or `stop` is set."""
    deadline = time.monotonic() + 120
    while not stop.is_set():
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock_path)
            break
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
    else:
        return
    f = s.makefile("rw")
    f.readline()
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    f.readline()
    cmd = json.dumps(
        {"execute": "human-monitor-command", "arguments": {"command-line": "info registers -a"}}
    )
    while not stop.is_set():
        try:
            f.write(cmd + "\n")
            f.flush()
            while True:
                line = f.readline()
                if not line:
                    return
                reply = json.loads(line)
                if "return" in reply:
                    break
        except (OSError, ValueError):
            return
        for cpu, block in enumerate(reply["return"].split("\nCPU#")):
            rip = re.search(r"RIP=([0-9a-f]+)", block)
            hlt = re.search(r"HLT=(\d)", block)
            if rip:
                samples.append((cpu, int(rip.group(1), 16), hlt is not None and hlt.group(1) == "1"))
        time.sleep(1 / hz)


def symbols(elf):
    """Sorted (address, name) of the image's functions, demangled."""
    out = subprocess.run(
        ["nm", "--defined-only", "-n", elf], capture_output=True, text=True, check=True
    ).stdout
    raw = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            name = parts[2]
            kernel = name.startswith(KERNEL_PREFIX)
            raw.append((int(parts[0], 16), name[len(KERNEL_PREFIX):] if kernel else name, kernel))
    demangled = subprocess.run(
        ["c++filt"], input="\n".join(n for _, n, _ in raw), capture_output=True, text=True
    ).stdout.splitlines()
    if len(demangled) != len(raw):
        demangled = [n for _, n, _ in raw]
    syms = []
    for (addr, _, kernel), name in zip(raw, demangled):
        name = re.sub(r"::h[0-9a-f]{16}$", "", name)
        syms.append((addr, ("kernel " if kernel else "") + name))
    return syms


def report(samples, elf, top):
    syms = symbols(elf)
    addrs = [a for a, _ in syms]
    counts = collections.Counter()
    for _, rip, halted in samples:
        if halted:
            counts["<halted>"] += 1
            continue
        i = bisect.bisect_right(addrs, rip - LOAD_BASE) - 1
        counts[syms[i][1] if i >= 0 else "<outside the image>"] += 1
    total = len(samples)
    lines = [f"{total} samples (vCPU x sample)"]
    for name, n in counts.most_common(top):
        lines.append(f"{100 * n / total:5.1f}% {n:6d}  {name[:120]}")
    return "\n".join(lines)


def main():
    if len(sys.argv) > 1 and sys.argv[1] != "--help" and "PVBENCH_PROFILE_SOCK" in os.environ:
        qemu_wrapper(sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hz", type=float, default=200)
    ap.add_argument("--out", required=True, help="the profile, as text")
    ap.add_argument("--elf", help="the image's app.elf (default: the image the guest names)")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command")
    tmp = tempfile.mkdtemp(prefix="pvbench-profile-")
    sock = os.path.join(tmp, "qmp.sock")
    env = dict(os.environ, PVBENCH_PROFILE_SOCK=sock, PVBENCH_QEMU=os.path.abspath(__file__))
    samples, stop = [], threading.Event()
    sampler = threading.Thread(target=sample, args=(sock, a.hz, samples, stop), daemon=True)
    sampler.start()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    stop.set()
    sampler.join(timeout=5)
    sys.stderr.write(run.stderr[-2000:])
    elf = a.elf
    if elf is None:
        # The image the command booted: the one `pvbench build` reports as current.
        build = subprocess.run([cmd[0], "build"], capture_output=True, text=True)
        image_dir = build.stdout.strip().splitlines()[-1:] if build.returncode == 0 else []
        if not image_dir:
            sys.exit("guest_profile: `pvbench build` named no image; pass --elf")
        elf = os.path.join(image_dir[0], "app.elf")
    text = f"command: {' '.join(cmd)}\nexit: {run.returncode}\nimage: {elf}\n" + report(samples, elf, a.top)
    result = [l for l in run.stdout.splitlines() if "elapsed_s" in l or "tps" in l]
    text += "\n" + "\n".join(result) + "\n"
    with open(a.out + ".tmp", "w") as f:
        f.write(text)
    os.replace(a.out + ".tmp", a.out)
    print(text)
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
