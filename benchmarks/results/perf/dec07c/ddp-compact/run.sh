#!/bin/bash
# issue 11: --compact-embeddings under 2 processes (gloo), SST-2, 300 steps, cache shared between runs
cd "$(git rev-parse --show-toplevel)" && . .venv/bin/activate
export OMP_NUM_THREADS=1
for v in dense compact dense2; do
  opt=""; [ $v = compact ] && opt="--compact-embeddings"
  rm -rf runs/ddptime/$v
  /usr/bin/time -v python -m torch.distributed.run --standalone --nproc_per_node 2 -m bertdistill.cli distill \
    --teacher runs/bench/sst2-teacher/best --task sst2 --data ../shared/data/sst2/glue --recipe kd_hidden_mse \
    --student-layers every_other --output runs/ddptime/$v --max-steps 300 --batch-size 32 --max-length 64 \
    --eval-every 100000 --seed 3 --cache-dir runs/ddptime/cache $opt > runs/ddptime/$v.log 2>&1
done
echo DDPTIME DONE
