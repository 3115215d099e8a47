#!/usr/bin/env python3
# summarize.py RUNS.tsv: per condition, the build times (elapsed_s) and pv-lock halts of ab.sh output.
import sys, statistics as st, collections, re
d=collections.defaultdict(list); h=collections.defaultdict(list)
for l in open(sys.argv[1]):
    f=l.rstrip('\n').split('\t')
    m=re.search(r'(mean|elapsed_s)=([0-9.]+)',f[2]) if len(f)>2 else None
    if not m: print('bad',l.strip()); continue
    d[f[0]].append(float(m.group(2)))
    k=re.search(r'halted=(\d+)',f[2]); 
    if k: h[f[0]].append(int(k.group(1)))
for c,x in d.items():
    print(f"{c:14s} n={len(x):3d} mean={st.mean(x):.3f} median={st.median(x):.3f} sd={st.stdev(x):.3f} cv={100*st.stdev(x)/st.mean(x):5.1f}% min={min(x):.3f} max={max(x):.3f} halted_mean={st.mean(h[c]) if h[c] else 0:.0f}")
