#!/usr/bin/env bash
# Does --mixed-precision bf16 change the numbers on a CPU without bf16 instructions? The 2.53x / 4.16x setting's
# options, 2,000 SST-2 phrases, 40 steps, fp32 then bf16; prints each run's logged losses and dev scores.
# bash benchmarks/results/perf/dec07d/bf16_check.sh > benchmarks/results/perf/dec07d/bf16_check.txt
cd "$(dirname "$0")/../../../.." && . .venv/bin/activate && mkdir -p runs/bf16chk  # the repository root
for p in no bf16; do
  BERTDISTILL_DROPOUT=fast bertdistill distill --teacher runs/bench/sst2-teacher/best --task sst2 --recipe kd_hidden_mse \
    --student-layers 0,2,4 --max-train-examples 2000 --max-steps 40 --batch-size 32 --max-length 64 --eval-every 100000 \
    --seed 3 --cache-dir runs/bf16chk/cache --cache-attention eager --compact-embeddings --latency-runs 0 \
    --mixed-precision $p --output runs/bf16chk/$p > runs/bf16chk/$p.out 2>&1
done
python - <<'PY'
import json
for p in ("no","bf16"):
    rows=[json.loads(l) for l in open(f"runs/bf16chk/{p}/log.jsonl")]
    print(p, [round(r["loss"],6) for r in rows if "loss" in r], [r["eval"] for r in rows if "eval" in r][-1:])
PY
