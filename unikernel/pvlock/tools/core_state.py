#!/usr/bin/env python3
"""The pv-lock state of a stalled guest, from `pvbench boot --dump-on-stall CORE`.

usage: core_state.py CORE APP_ELF [LOAD_BASE [MAX_CPUS [CPUS]]]

APP_ELF is the image's `target/pvbench/images/ID/app.elf`; the loader puts the
kernel at LOAD_BASE (0x400000), identity-mapped. Prints each CPU's KICKED flag
and pending kick NMIs, the stray NMIs, the pvqspin queue nodes (claimed mask,
`next` tail code and node word: NODE_LOCKED=1, HALTED=2, HASHED=4) and every
hash-table entry with its lock's word (locked byte 1 held, 3 slow; pending
0x100; tail CPU+1 << 18 | index << 16). The layouts are those of
`src/queued.rs` and `src/pvhash.rs`: change this with them.
For registers and stacks: gdb -ex "add-symbol-file APP_ELF -o 0x400000"
-ex "core-file CORE" -ex "thread apply all bt"."""
import struct, sys, re
core = open(sys.argv[1], 'rb').read()
elf = open(sys.argv[2], 'rb').read()
BASE = int(sys.argv[3], 0) if len(sys.argv) > 3 else 0x400000
MAX_CPUS = int(sys.argv[4]) if len(sys.argv) > 4 else 64

def phdrs(b):
    phoff, = struct.unpack_from('<Q', b, 32); phentsize, phnum = struct.unpack_from('<HH', b, 54)
    return [struct.unpack_from('<IIQQQQQQ', b, phoff + i * phentsize) for i in range(phnum)]
def canon(v):
    return v & 0xffffffffffff if (v >> 48) == 0xffff and not (v >> 47) & 1 else v
segs = [(t, f, off, canon(va), p, fs, ms, al) for (t, f, off, va, p, fs, ms, al) in phdrs(core) if t == 1]
def read_virt(va, n):
    for t, f, off, v, p, fs, ms, al in segs:
        if v <= va and va + n <= v + fs: return core[off + va - v: off + va - v + n]
# symbols
shoff, = struct.unpack_from('<Q', elf, 40); shentsize, shnum, shstrndx = struct.unpack_from('<HHH', elf, 58)
sh = [struct.unpack_from('<IIQQQQIIQQ', elf, shoff + i * shentsize) for i in range(shnum)]
syms = {}
for s in sh:
    if s[1] == 2:  # SYMTAB
        strtab = sh[s[6]]
        for i in range(s[5] // 24):
            name, info, other, shndx, value, size = struct.unpack_from('<IBBHQQ', elf, s[4] + i * 24)
            end = elf.index(b'\0', strtab[4] + name)
            syms[elf[strtab[4] + name:end].decode()] = (value, size)
def sym(pat):
    hits = [(k, v) for k, v in syms.items() if re.search(pat, k)]
    assert len(hits) == 1, (pat, hits[:5])
    return hits[0][1]
def u32s(va, n): return struct.unpack('<%dI' % n, read_virt(va, 4 * n))
def u64s(va, n): return struct.unpack('<%dQ' % n, read_virt(va, 8 * n))

kicked_va, _ = sym(r'kernel6pvlock6KICKED17'); pend_va, _ = sym(r'PENDING_KICKS')
stray_va, _ = sym(r'pvlock10STRAY_NMIS'); nodes_va, nodes_size = sym(r'queued5NODES')
table_va, table_size = sym(r'pvhash5TABLE')
ncpu = int(sys.argv[5]) if len(sys.argv) > 5 else 4
print('KICKED', list(read_virt(BASE + kicked_va, ncpu)))
print('PENDING_KICKS', u32s(BASE + pend_va, ncpu))
print('STRAY_NMIS', u64s(BASE + stray_va, 1))
print('NODES size', nodes_size, 'TABLE size', table_size)
def decode_word(w):
    return f'{w:#x} locked={w & 0xff} pending={(w >> 8) & 1} tail=' + (f'cpu{(w >> 18) - 1}/idx{(w >> 16) & 3}' if w >> 16 else 'none')
per = nodes_size // MAX_CPUS
for cpu in range(ncpu):
    base = BASE + nodes_va + cpu * per
    claimed, = u32s(base, 1)
    nodes = u32s(base + 4, 8)
    print(f'cpu{cpu} claimed={claimed:#x}', ' '.join(f'[{i}] next={nodes[2*i]:#x} word={nodes[2*i+1]:#x}' for i in range(4)))
entries = table_size // 16
for i in range(entries):
    lock, node = struct.unpack('<QI', read_virt(BASE + table_va + 16 * i, 12))
    if lock:
        w = read_virt(lock, 4)
        print(f'hash[{i}] lock={lock:#x} node tail={node:#x} (cpu{(node >> 18) - 1}/idx{(node >> 16) & 3}) lock word:', decode_word(struct.unpack('<I', w)[0]) if w else 'unreadable')
