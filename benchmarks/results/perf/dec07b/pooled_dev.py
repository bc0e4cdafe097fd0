"""Pooled dev accuracies of the 4x setting against all TextBrewer seeds (issue 11, RESULTS.md 2026-12-07 morning).

Run from the repository root: python benchmarks/results/perf/dec07b/pooled_dev.py
"""
import importlib.util, statistics as st, json, os
spec=importlib.util.spec_from_file_location('ts','benchmarks/textbrewer_seeds.py');m=importlib.util.module_from_spec(spec);spec.loader.exec_module(m)
P='benchmarks/results/perf/'
def dev(f,k): return json.load(open(f))['runs'][k]['dev_accuracy']
tbf=[P+'dec07/fc-seed%s.json'%s for s in (42,1,2)]+[P+'dec07b/fc-bf16-intel-seed3.json']+[P+'dec07b/fc-fp32-intel-seed%s.json'%s for s in (4,5)]
tb=[dev(f,'tb_dynamic') for f in tbf]
bff=[P+'dec07/fc-seed%s.json'%s for s in (42,1,2)]+[P+'dec07b/fc-bf16-intel-seed%s.json'%s for s in (3,4,5) if os.path.exists(P+'dec07b/fc-bf16-intel-seed%s.json'%s)]
bf=[dev(f,'ours_cache') for f in bff]
fp=[dev(P+'dec07b/fc-fp32-intel-seed%s.json'%s,'ours_cache') for s in (3,4,5)]
for name,x in [('tb',tb),('bf16',bf),('fp32',fp),('pooled',bf+fp)]:
    print(name,len(x),[round(v*872) for v in x], f"{st.mean(x):.4f} ± {st.stdev(x):.4f}")
for name,x in [('bf16',bf),('fp32',fp),('pooled',bf+fp)]:
    w=m.welch(x,tb); print(name,'vs tb', f"{100*w['difference']:+.2f} [{100*w['interval'][0]:+.2f}, {100*w['interval'][1]:+.2f}] t {w['t']:.2f} df {w['df']:.1f}")
