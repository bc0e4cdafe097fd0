#!/usr/bin/env bash
# Runs every benchmark recorded in benchmarks/RESULTS.md, one after the other (2-core machine:
# never in parallel). Each step writes its JSON/log under runs/bench/. Timings: `time` output
# in runs/bench/<step>.time. Usage: bash benchmarks/run_all.sh [step ...]
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
D=${BERTDISTILL_DATA:-../shared/data}
B=runs/bench
mkdir -p $B
run() {  # run NAME COMMAND...
  local name=$1; shift
  echo "=== $name: $*" | tee -a $B/commands.txt
  { /usr/bin/time -v "$@" ; } > $B/$name.log 2> >(tee $B/$name.err >&2 | grep -E "Elapsed|Maximum resident" > $B/$name.time)
}
steps=${*:-"sst2-teacher demo sst2-student textbrewer conll-teacher conll-student embed-sst2 peak-flops sst2-export sst2-bench sst2-report"}
for step in $steps; do case $step in
  sst2-teacher) run $step bertdistill finetune --task sst2 --data $D/sst2/glue --model minilm-l6 --output $B/sst2-teacher \
                  --epochs 1 --batch-size 32 --lr 5e-5 --max-length 64 --eval-every 500 ;;
  demo)         run $step bertdistill demo --output $B/demo ;;
  sst2-student) run $step bertdistill distill --teacher $B/sst2-teacher/best --task sst2 --data $D/sst2/glue \
                  --recipe distilbert --student-layers every_other --output $B/sst2-student --epochs 1 \
                  --batch-size 32 --lr 1e-4 --max-length 64 --eval-every 500 --cache-dir $B/cache ;;
  sst2-student-loop) run $step bertdistill distill --teacher $B/sst2-teacher/best --task sst2 --data $D/sst2/glue \
                  --recipe distilbert --student-layers every_other --output $B/sst2-student-loop --epochs 1 \
                  --batch-size 32 --lr 1e-4 --max-length 64 --eval-every 500 --cache-dir $B/cache --optimizer loop ;;
  sst2-student-grouped|sst2-student-shuffled|sst2-student-bf16)  # issue 11: one more seed (SEED=1 ...) of the student job above
                batching=${step#sst2-student-}; flag=""; [ $batching = shuffled ] && flag=--no-length-grouping
                [ $batching = bf16 ] && flag="--mixed-precision bf16"
                run $step-s${SEED:-42} bertdistill distill --teacher $B/sst2-teacher/best --task sst2 --data $D/sst2/glue \
                  --recipe distilbert --student-layers every_other --output $B/$step-s${SEED:-42} --epochs 1 \
                  --batch-size 32 --lr 1e-4 --max-length 64 --eval-every 500 --cache-dir $B/cache --seed ${SEED:-42} $flag ;;
  textbrewer)   run $step python benchmarks/textbrewer_compare.py --steps 300 --teacher $B/sst2-teacher/best \
                  --batch-size 32 --max-length 64 --threads 2 --out $B/textbrewer ;;
  textbrewer-epoch) run $step${TAG:+-$TAG}-s${SEED:-42} python benchmarks/textbrewer_compare.py --epochs 1 \
                  --teacher $B/sst2-teacher/best --batch-size 32 --max-length 64 --threads 2 \
                  --runs ${RUNS:-tb_dynamic,ours_cache,ours_live_random} --seed ${SEED:-42} ${EXTRA:-} \
                  --out $B/textbrewer-epoch${TAG:+-$TAG}-s${SEED:-42} ;;
  textbrewer-epoch-bf16)  # issue 11: bertdistill in bf16 (its cache build too); TextBrewer in fp32, as it runs on CPU
                # TAG names a variant, EXTRA adds its options (e.g. --cache-attention eager, --textbrewer-from F)
                run $step${TAG:+-$TAG}-s${SEED:-42} python benchmarks/textbrewer_compare.py --epochs 1 \
                  --teacher $B/sst2-teacher/best --batch-size 32 --max-length 64 --threads 2 \
                  --runs ${RUNS:-tb_dynamic,ours_cache} --mixed-precision bf16 --seed ${SEED:-42} ${EXTRA:-} \
                  --out $B/textbrewer-epoch-bf16${TAG:+-$TAG}-s${SEED:-42} ;;
  conll-teacher) run $step bertdistill finetune --task conll2003 --data $D/conll2003/iob2 --model minilm-l6 \
                  --output $B/conll-teacher --epochs 2 --batch-size 32 --lr 1e-4 --max-length 128 ;;
  conll-student) run $step bertdistill distill --teacher $B/conll-teacher/best --task conll2003 --data $D/conll2003/iob2 \
                  --recipe ner_kd --student-layers every_other --output $B/conll-student --epochs 2 --batch-size 32 \
                  --lr 1e-4 --max-length 128 --cache-dir $B/cache ;;
  embed-sst2)   run $step bertdistill embed --task sst2 --data $D/sst2/glue --model minilm-l6 --pooling mean \
                  --output $B/embed-sst2.json ;;
  embed-sst2-20k) run $step bertdistill embed --task sst2 --data $D/sst2/glue --model minilm-l6 --pooling mean \
                  --max-train-examples 20000 --output $B/embed-sst2-20k.json ;;
  sst2-export)  for f in onnx onnx-int8; do  # issue 9: ONNX Runtime fp32 / int8 folders with parity + dev scores
                  run $step-student-$f bertdistill export $B/sst2-student/student --format $f --data $D/sst2/glue \
                    --max-length 64 --output $B/exports/student-$f
                  run $step-teacher-$f bertdistill export $B/sst2-teacher/best --format $f --data $D/sst2/glue \
                    --max-length 64 --output $B/exports/teacher-$f; done ;;
  sst2-bench)   run $step bertdistill benchmark $B/sst2-teacher/best $B/sst2-student/student --names teacher,student \
                  --threads 2 --exports-dir $B/exports --output $B/sst2-bench.json ;;
  sst2-report)  run $step bertdistill report $B/sst2-teacher $B/sst2-student --benchmark $B/sst2-bench.json \
                  --output docs/sst2-report ;;
  export-fusions) run $step python benchmarks/export_fusions.py $B/sst2-teacher/best --output $B/export-fusions.json ;;
  peak-flops)   run $step python benchmarks/peak_flops.py --teacher $B/sst2-teacher/best --threads 2 --out $B/peak_flops ;;
  peak-flops-keep|peak-flops-system)  # issue 11: the cached-teacher step under each CPU allocator setting, profiled
                alloc=${step#peak-flops-}
                BERTDISTILL_ALLOCATOR=$alloc run $step python benchmarks/peak_flops.py --teacher $B/sst2-teacher/best \
                  --threads 2 --cache --steps 30 --profile 10 --out $B/peak_flops-$alloc ;;
  peak-flops-fast)  # issue 11: the same step with --compact-embeddings and BERTDISTILL_DROPOUT=fast (TAG: a round)
                BERTDISTILL_DROPOUT=fast run $step${TAG:+-$TAG} python benchmarks/peak_flops.py \
                  --teacher $B/sst2-teacher/best --threads 2 --cache --steps 30 --compact-embeddings \
                  --out $B/peak_flops-fast${TAG:+-$TAG} ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac; done
