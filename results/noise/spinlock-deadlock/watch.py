"""Catches a guest that lives too long: a 1x cell's bench guest (4 builds of
the kernbench-like at scale 10) lives ~4 s, so one alive after LIMIT seconds
(default 12) is held. Writes every vCPU's registers three times, 0.3 s apart
(`info registers -a`), then the guest's physical memory as an ELF core
(QMP `dump-guest-memory`, paging off: kernel symbols of app.elf at +0x400000
read directly; task stacks need the page tables), into $DEADLOCK_WORK."""
import socket, json, time, os, glob, sys
W = os.environ.get('DEADLOCK_WORK', '/tmp/pvbench-deadlock')
LIMIT = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
done = set()
log = open(W + '/watch.log', 'a')
def qmp(path):
    s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(path)
    f = s.makefile('rw'); f.readline()
    def cmd(c, args=None):
        m = {"execute": c}
        if args: m["arguments"] = args
        f.write(json.dumps(m) + "\n"); f.flush()
        while True:
            r = json.loads(f.readline())
            if 'return' in r or 'error' in r: return r
    cmd("qmp_capabilities")
    return s, cmd
while True:
    now = time.time()
    for p in glob.glob(W + '/sock/q-*.sock'):
        pid = p.split('-')[-1].split('.')[0]
        if not os.path.exists('/proc/' + pid):
            try: os.unlink(p)
            except OSError: pass
            continue
        try: age = now - os.stat(p).st_mtime
        except OSError: continue
        if age < LIMIT or p in done: continue
        done.add(p)
        try:
            cmdline = open('/proc/%s/cmdline' % pid).read().replace('\0', ' ')
            s, cmd = qmp(p)
            out = open('%s/dump-%s.txt' % (W, pid), 'w')
            out.write(cmdline + '\n')
            for i in range(3):
                r = cmd("human-monitor-command", {"command-line": "info registers -a"})
                out.write('=== %d %.3f\n' % (i, time.time()) + r.get('return', str(r)) + '\n'); out.flush()
                time.sleep(0.3)
            r = cmd("dump-guest-memory", {"paging": False, "protocol": "file:%s/core-%s.elf" % (W, pid)})
            out.write('dump: %s\n' % r); out.close(); s.close()
            log.write('%s dumped pid %s age %.1f\n' % (time.ctime(), pid, age)); log.flush()
        except Exception as e:
            log.write('%s pid %s error %r\n' % (time.ctime(), pid, e)); log.flush()
    time.sleep(0.5)
