#!/usr/bin/env python3
"""Live migration of a 4-vCPU lock stress under a chosen TCG threading mode,
driven by hand (no pvbench runner), to tell whether multi-threaded TCG is what
damages live-migrated guests.

    THREAD=single|multi [STOPFIRST=1] python3 results/migration/tcg-threads.py IMAGE_DIR [MODE] [ROUNDS]

IMAGE_DIR is a built guest image (`pvbench build --quiet` prints it). Migrates
the guest 10 times, 0.5 s apart (paused first with STOPFIRST=1), then waits
25 s for it to finish; prints `exit=5` (the guest's success) or `HUNG`.
"""
import json, os, socket, subprocess, sys, tempfile, time

image, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "pv")
rounds = sys.argv[3] if len(sys.argv) > 3 else "3000"
thread, stop_first = os.environ.get("THREAD", "multi"), bool(os.environ.get("STOPFIRST"))
work = tempfile.mkdtemp(prefix="pvbench-tcg-threads-")
append = f"-- pvlock={mode} pvlock.spin=16 mode=lockstress threads=8 rounds={rounds}"


def qemu(i, incoming=None):
    args = ["qemu-system-x86_64", "-accel", f"tcg,thread={thread}", "-nodefaults", "-display", "none",
            "-no-reboot", "-chardev", f"file,id=ser,path={work}/serial.log,append=on", "-serial", "chardev:ser",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-smp", "4", "-m", "512M", "-cpu", "max,-monitor",
            "-kernel", f"{image}/loader.elf32", "-initrd", f"{image}/app.elf", "-append", append,
            "-qmp", f"unix:{work}/qmp{i}.sock,server=on,wait=off"]
    if incoming:
        args += ["-incoming", incoming]
    return subprocess.Popen(args, stderr=subprocess.DEVNULL)


def qmp(i, cmd, arguments=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(f"{work}/qmp{i}.sock")
    f = s.makefile("rw")
    f.readline()
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    f.readline()
    f.write(json.dumps({"execute": cmd, **({"arguments": arguments} if arguments else {})}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            s.close()
            return r


i, src, migrations = 0, qemu(0), 0
while migrations < 10 and src.poll() is None:
    time.sleep(0.5)
    j = i + 1
    dst = qemu(j, f"unix:{work}/mig{j}.sock")
    while not (os.path.exists(f"{work}/mig{j}.sock") and os.path.exists(f"{work}/qmp{j}.sock")):
        time.sleep(0.02)
    if stop_first:
        qmp(i, "stop")
    qmp(i, "migrate", {"uri": f"unix:{work}/mig{j}.sock"})
    while qmp(i, "query-migrate")["return"].get("status") not in ("completed", "failed", "cancelled"):
        time.sleep(0.02)
    src.kill()
    src.wait()
    if stop_first:
        while qmp(j, "query-status")["return"].get("status") == "inmigrate":
            time.sleep(0.01)
        qmp(j, "cont")
    src, i, migrations = dst, j, migrations + 1
try:
    print(f"exit={src.wait(timeout=25)} migrations={migrations} thread={thread} stop_first={stop_first}")
except subprocess.TimeoutExpired:
    print(f"HUNG after {migrations} migrations thread={thread} stop_first={stop_first}")
    src.kill()
