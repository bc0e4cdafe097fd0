#!/usr/bin/env bash
# Benchmark tinybert-full: the TinyBERT 4L/312 student on ALL of SST-2 (67,349 phrases), from
# random weights and from a general TinyBERT student (benchmarks/RESULTS.md, "SST-2: TinyBERT,
# PKD and layer-wise strategies"). Models go to $ART (default runs/bench/tinybert-full), the
# JSON summaries to benchmarks/results/tinybert-full/.
#   bash benchmarks/tinybert_full.sh general          # corpus, masked-LM head, general distillation (once)
#   SEED=2 bash benchmarks/tinybert_full.sh random from-general
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
D=${BERTDISTILL_DATA:-../shared/data}
ART=${ART:-runs/bench/tinybert-full}
TEACHER=${TEACHER:-runs/bench/sst2-teacher/best}
SEED=${SEED:-1}
RES=benchmarks/results/tinybert-full
mkdir -p "$ART" "$RES"
# the task step: both stages of tinybert_task, 2 epochs each, lr 3e-4, bf16, dev scored every 1,000 steps
task() {  # task NAME EXTRA_FLAGS...
  local name=$1; shift
  /usr/bin/time -v bertdistill distill --teacher "$TEACHER" --task sst2 --data "$D/sst2/glue" --recipe tinybert_task \
    --epochs 2 --lr 3e-4 --batch-size 32 --max-length 64 --mixed-precision bf16 --eval-every 1000 --seed "$SEED" \
    --output "$ART/$name" "$@" > "$ART/$name.log" 2> "$ART/$name.err"
  python benchmarks/tinybert_full_summary.py "$ART/$name" "$ART/$name.err" > "$RES/$name.json"
  cat "$RES/$name.json"
}
for step in "$@"; do case $step in
  general)  # general text (no SST-2): WikiText-2 valid + test, QNLI dev, MRPC, RTE, STS-B, CoLA, CoNLL-2003
    bertdistill corpus prepare --text $D/wikitext2/raw/wiki.valid.raw $D/wikitext2/raw/wiki.test.raw task:qnli:dev \
      task:mrpc task:rte task:stsb task:cola task:conll2003 --tokenizer minilm-l6 --output "$ART/corpora/general" --no-progress
    # general-distill asks for a masked-LM teacher; general_tinybert compares no logits, so its head is unused
    bertdistill mlm-head --model minilm-l6 --corpus "$ART/corpora/general" --max-steps 60 --lr 3e-3 --batch-size 32 \
      --mixed-precision bf16 --output "$ART/mlm-teacher" > "$ART/mlm-teacher.log" 2>&1
    /usr/bin/time -v bertdistill general-distill --teacher "$ART/mlm-teacher/model" --corpus "$ART/corpora/general" \
      --recipe general_tinybert --student-config '{"preset": "tinybert4"}' --epochs 2 --batch-size 32 \
      --mixed-precision bf16 --seed 1 --output "$ART/gd_tb4" > "$ART/gd_tb4.log" 2> "$ART/gd_tb4.err"
    ;;
  random)       task tb4_full_s$SEED --student-config '{"preset": "tinybert4"}' ;;
  from-general) task tb4_gd_full_s$SEED --student "$ART/gd_tb4/student" ;;
  speed)  # batch-1 latency and FLOP ratio of the task students against the teacher (after the runs above)
    python benchmarks/tinybert_full_speed.py --teacher "$TEACHER" --data "$D/sst2/glue" --output "$RES/speed.json" \
      "$ART"/tb4_*full_s* ;;
  *) echo "unknown step $step" >&2; exit 2 ;;
esac; done
