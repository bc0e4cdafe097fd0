#!/usr/bin/env bash
# General distillation (issue 6): the measurements of benchmarks/RESULTS.md, section
# "General distillation (issue 6)". Runs on CPU with nice; each step is small on purpose
# (the machine is shared). Artefacts (corpora, models) go to $ART, JSON results to
# benchmarks/results/general/.
#   bash benchmarks/general_distill.sh corpora teacher student sst2 throughput accelerate
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
    --max-eval-sequences 1000 --epochs 1 --lr 3e-3 --batch-size 32 --output "$ART/mlm-teacher" --no-resume
  cp "$ART/mlm-teacher/results.json" "$RES/mlm_teacher.json"
  ;;
esac
done
