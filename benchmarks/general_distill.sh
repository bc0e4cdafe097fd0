#!/usr/bin/env bash
# General distillation (issue 6): the measurements of benchmarks/RESULTS.md, section
# "General distillation (issue 6)". Runs on CPU with nice; each step is small on purpose
# (the machine is shared). Artefacts (corpora, models) go to $ART, JSON results to
# benchmarks/results/general/.
#   bash benchmarks/general_distill.sh corpora teacher student sst2 throughput accelerate
# Sizes come from the environment: TEACHER_EPOCHS, UNFREEZE_TOP_LAYERS (teacher), GENERAL_STEPS,
# GENERAL_BATCH (student), SST2_EXAMPLES, SEED, WHO, SUFFIX (task step; SUFFIX names the JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
BD="nice -n 5 $PY -m bertdistill.cli"
DATA=${BERTDISTILL_DATA:-../shared/data}
ART=${ART:-/work/artifacts/i6g}
RES=benchmarks/results/general
SST2_TEACHER=${SST2_TEACHER:-/work/artifacts/sst2-teacher/best}
mkdir -p "$ART" "$RES"

for step in "$@"; do
case $step in
corpora)  # WikiText-2 valid (train) and test (held out), MiniLM-L6 word pieces, 128 tokens max
  $BD corpus prepare --text "$DATA/wikitext2/raw/wiki.valid.raw" --tokenizer minilm-l6 --output "$ART/corpora/wt2-valid"
  $BD corpus prepare --text "$DATA/wikitext2/raw/wiki.test.raw" --tokenizer minilm-l6 --output "$ART/corpora/wt2-test"
  ;;
teacher)  # (a) MLM head on the frozen MiniLM-L6 encoder, fitted on WikiText-2 valid, scored on test
  $BD mlm-head --model minilm-l6 --corpus "$ART/corpora/wt2-valid" --eval-corpus "$ART/corpora/wt2-test" \
    --max-eval-sequences 1000 --epochs "${TEACHER_EPOCHS:-1}" --lr 3e-3 --batch-size 32 \
    --unfreeze-top-layers "${UNFREEZE_TOP_LAYERS:-0}" --output "$ART/mlm-teacher"
  cp "$ART/mlm-teacher/results.json" "$RES/mlm_teacher.json"
  ;;
student)  # (b)+(d) 3-layer DistilBERT student from teacher layers 2,4,6, generally distilled on WikiText-2 valid
  $BD general-distill --teacher "$ART/mlm-teacher/model" --corpus "$ART/corpora/wt2-valid" \
    --eval-corpus "$ART/corpora/wt2-test" --max-eval-sequences 300 --recipe general_distilbert \
    --batch-size "${GENERAL_BATCH:-8}" --max-steps "${GENERAL_STEPS:-25}" --lr 5e-4 --log-every 5 \
    --output "$ART/general-student" --no-resume
  cp "$ART/general-student/results.json" "$RES/general_student.json"
  ;;
baselines)  # (c i) the same shape from teacher layers, not distilled; (c ii) the same shape, random
  $BD general-distill --teacher "$ART/mlm-teacher/model" --corpus "$ART/corpora/wt2-valid" --init-only \
    --output "$ART/layers-student" --no-resume
  $BD general-distill --teacher "$ART/mlm-teacher/model" --corpus "$ART/corpora/wt2-valid" --init-only \
    --student-config '{"hidden_size": 384, "num_hidden_layers": 3, "num_attention_heads": 12, "intermediate_size": 1536}' \
    --output "$ART/random-student" --no-resume
  ;;
sst2)  # (c) task distillation on SST-2 from each of the three students: 1,000 train phrases, 1 epoch, max length 64
  for who in ${WHO:-general layers random}; do
    $BD distill --teacher "$SST2_TEACHER" --task sst2 --data "$DATA/sst2/glue" --recipe distilbert \
      --student "$ART/$who-student/student" --max-train-examples "${SST2_EXAMPLES:-1000}" --epochs 1 --max-length 64 \
      --batch-size 32 --seed "${SEED:-42}" --output "$ART/sst2-from-$who" --no-resume --cache-dir "$ART/cache"
    cp "$ART/sst2-from-$who/results.json" "$RES/sst2_from_$who${SUFFIX:-}.json"
  done
  ;;
accelerate)  # accelerate launch with 2 CPU processes, on the tiny test teacher (tests/general_fixtures.py)
  T="$ART/tiny"
  PYTHONPATH="tests:${PYTHONPATH:-}" $PY -c "
from pathlib import Path
from general_fixtures import save_tiny_mlm, write_text, prepare
r = Path('$T'); t = save_tiny_mlm(r / 'teacher'); prepare(write_text(r / 'train.txt', 200, 1), str(t), r / 'corpus')"
  export OMP_NUM_THREADS=1
  # --cpu: accelerate's simple launcher starts ONE process (results: processes 1)
  nice -n 5 accelerate launch --num_processes 2 --cpu --main_process_port 29641 -m bertdistill.cli general-distill \
    --teacher "$T/teacher" --corpus "$T/corpus" --batch-size 8 --max-steps 6 --log-every 2 --output "$T/accelerate-2cpu" --no-resume
  cp "$T/accelerate-2cpu/results.json" "$RES/accelerate_cpu_flag.json"
  # --multi_gpu on a machine without GPUs: torchrun-style launch of 2 processes, gloo (results: processes 2)
  nice -n 5 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
    --main_process_port 29641 -m bertdistill.cli general-distill --teacher "$T/teacher" --corpus "$T/corpus" \
    --batch-size 8 --max-steps 6 --log-every 2 --output "$T/accelerate-2proc" --no-resume
  cp "$T/accelerate-2proc/results.json" "$RES/accelerate_multi_gpu_flag_2proc.json"
  ;;
*) echo "unknown step $step"; exit 2 ;;
esac
done
