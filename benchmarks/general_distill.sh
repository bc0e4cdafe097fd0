#!/usr/bin/env bash
# Benchmark general: general (masked-LM) distillation of a 3-layer student on WikiText-2, then
# task distillation on SST-2 from it, from copied teacher layers and from random weights
# (benchmarks/RESULTS.md, "General distillation"). Models and corpora go to $ART (default
# runs/bench/general), JSON results to benchmarks/results/general/.
#   bash benchmarks/general_distill.sh corpora teacher student baselines sst2
# Sizes come from the environment: TEACHER_EPOCHS, UNFREEZE_TOP_LAYERS (teacher), GENERAL_STEPS,
# GENERAL_BATCH (student), SST2_EXAMPLES, SEED, WHO, SUFFIX (task step; SUFFIX names the JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
BD="$PY -m bertdistill.cli"
DATA=${BERTDISTILL_DATA:-../shared/data}
ART=${ART:-runs/bench/general}
RES=benchmarks/results/general
SST2_TEACHER=${SST2_TEACHER:-runs/bench/sst2-teacher/best}
mkdir -p "$ART" "$RES"

for step in "$@"; do
case $step in
corpora)  # WikiText-2 valid (train) and test (held out), MiniLM-L6 word pieces, 128 tokens max
  $BD corpus prepare --text "$DATA/wikitext2/raw/wiki.valid.raw" --tokenizer minilm-l6 --output "$ART/corpora/wt2-valid"
  $BD corpus prepare --text "$DATA/wikitext2/raw/wiki.test.raw" --tokenizer minilm-l6 --output "$ART/corpora/wt2-test"
  ;;
teacher)  # MLM head on the frozen MiniLM-L6 encoder, fitted on WikiText-2 valid, scored on test
  $BD mlm-head --model minilm-l6 --corpus "$ART/corpora/wt2-valid" --eval-corpus "$ART/corpora/wt2-test" \
    --max-eval-sequences 1000 --epochs "${TEACHER_EPOCHS:-2}" --lr 3e-3 --batch-size 32 \
    --unfreeze-top-layers "${UNFREEZE_TOP_LAYERS:-0}" --output "$ART/mlm-teacher"
  cp "$ART/mlm-teacher/results.json" "$RES/mlm_teacher.json"
  ;;
student)  # 3-layer DistilBERT student from teacher layers 2,4,6, generally distilled on WikiText-2 valid
  $BD general-distill --teacher "$ART/mlm-teacher/model" --corpus "$ART/corpora/wt2-valid" \
    --eval-corpus "$ART/corpora/wt2-test" --max-eval-sequences 300 --recipe general_distilbert \
    --batch-size "${GENERAL_BATCH:-16}" --max-steps "${GENERAL_STEPS:-300}" --lr 5e-4 --log-every 5 \
    --output "$ART/general-student" --no-resume
  cp "$ART/general-student/results.json" "$RES/general_student.json"
  ;;
baselines)  # the same shape from teacher layers, not distilled; the same shape, random
  $BD general-distill --teacher "$ART/mlm-teacher/model" --corpus "$ART/corpora/wt2-valid" --init-only \
    --output "$ART/layers-student" --no-resume
  $BD general-distill --teacher "$ART/mlm-teacher/model" --corpus "$ART/corpora/wt2-valid" --init-only \
    --student-config '{"hidden_size": 384, "num_hidden_layers": 3, "num_attention_heads": 12, "intermediate_size": 1536}' \
    --output "$ART/random-student" --no-resume
  ;;
sst2)  # task distillation on SST-2 from each of the three students: a seeded subset, 1 epoch, max length 64
  for who in ${WHO:-general layers random}; do
    $BD distill --teacher "$SST2_TEACHER" --task sst2 --data "$DATA/sst2/glue" --recipe distilbert \
      --student "$ART/$who-student/student" --max-train-examples "${SST2_EXAMPLES:-8000}" --epochs 1 --max-length 64 \
      --batch-size 32 --seed "${SEED:-42}" --output "$ART/sst2-from-$who" --no-resume --cache-dir "$ART/cache"
    cp "$ART/sst2-from-$who/results.json" "$RES/sst2_from_$who${SUFFIX:-_8k_seed${SEED:-42}}.json"
  done
  ;;
*) echo "unknown step $step" >&2; exit 2 ;;
esac
done
