#!/usr/bin/env bash
# The benchmark suite: one entry point, named benchmarks, raw JSON under benchmarks/results/NAME/.
#
#   bash benchmarks/run.sh --list                 # the benchmarks, one line each
#   bash benchmarks/run.sh NAME [NAME ...]        # run them, one after the other
#   bash benchmarks/run.sh --dry-run NAME ...     # print the commands only
#
# Variables: SEED (default 42), TAG (names a variant in the JSON file names, default "default"),
# EXTRA (flags appended to the benchmark's main command, e.g. EXTRA="--mixed-precision bf16"),
# RUNS (textbrewer: which runs), SEEDS (the multi-seed benchmarks), VARIANTS (squad-student: kd labels),
# BERTDISTILL_DATA (default ../shared/data), BENCH_RUNS (models
# and run folders, outside git; default runs/bench). Each kept JSON gets a NAME.machine.json
# beside it: CPU model and flags, threads, date, wall time and the commands.
# Timings: run on an otherwise idle machine, one benchmark at a time (2 cores oversubscribe easily).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHMARKS="
demo             bertdistill demo: Rotten Tomatoes teacher and 3-layer student, accuracy and batch-1 latency
sst2-teacher     MiniLM-L6 fine-tuned on all of SST-2 (1 epoch): dev and test accuracy
sst2-embed       feature-extraction baseline: frozen MiniLM-L6 + logistic regression on SST-2
sst2-student     3-layer DistilBERT-style student of the SST-2 teacher, one seed (SEED, TAG, EXTRA)
sst2-export      ONNX Runtime fp32 / int8 exports of the SST-2 teacher and student: size, dev accuracy, parity
sst2-speed       batch-1 latency and batch-32 throughput of teacher and student in every format, and the report
textbrewer       the same distillation job as TextBrewer, one SST-2 epoch end to end, one seed (SEED, TAG, EXTRA)
tinybert         KD, PKD and TinyBERT 3-layer students and the layer-wise strategies, 4,000 SST-2 phrases, one seed
tinybert-augment TinyBERT task distillation on CoLA with and without TinyBERT's augmented transfer set, 2 seeds
tinybert-full    TinyBERT 4L/312 on all of SST-2, from a general TinyBERT student and from random weights
mobilebert       MobileBERT-style 12-layer student on SST-2: progressive transfer, all at once, KD only; ONNX int8; 2 seeds
bilstm           Tang's BiLSTM student on all of SST-2, with and without teacher and augmentation, one seed
general          general distillation on WikiText-2, then SST-2 task distillation from it, copied layers, random
embedding        3-layer sentence-embedding student of minilm-l6 on WikiText-2; STS-B and SQuAD-dev retrieval of both
conll            CoNLL-2003 NER teacher and its 3-layer token-level student
squad-teacher    MiniLM-L6 fine-tuned on the SQuAD train subset (2 epochs): official dev exact match and F1
squad-student    3-layer DistilBERT-style SQuAD students, distilled and on the labels alone, 2 seeds (SEEDS, VARIANTS)
squad-speed      SQuAD student in ONNX int8: dev EM/F1, span parity; batch-1 latency at 384 against the teacher
peak-flops       the cached-teacher distillation step against the CPU's measured fp32 / bf16 matmul peaks
corpus           corpus preparation: tokens/s and peak memory from 50 MB to 1 GB of token ids; masker speed
augment          throughput of every augmentation family on the same 1,000 SST-2 phrases
gpu-check        CUDA only: task-distillation step fp32/bf16 vs the bf16 peak; general distillation tokens/s, GPU memory
student-defaults which teacher layers a 3-layer student keeps (every_other vs every_other_last), 2 seeds
"

D=${BERTDISTILL_DATA:-../shared/data}
B=${BENCH_RUNS:-runs/bench}
R=benchmarks/results
SEED=${SEED:-42}
TAG=${TAG:-default}
EXTRA=${EXTRA:-}
DRY=0
NAME=""
COMMANDS=()

names() { echo "$BENCHMARKS" | awk 'NF {print $1}'; }

say() { printf '%s\n' "$*"; }

run() {  # run COMMAND...: echo it, remember it, run it unless --dry-run
  COMMANDS+=("$*")
  say "+ $*"
  [ "$DRY" = 1 ] || "$@"
}

keep() {  # keep SRC STEM: copy a result JSON to benchmarks/results/NAME/STEM.json, with its machine record
  local src=$1 stem=$2 dest=$R/$NAME
  say "  -> $dest/$stem.json"
  [ "$DRY" = 1 ] && return 0
  mkdir -p "$dest"
  [ "$src" = "$dest/$stem.json" ] || cp "$src" "$dest/$stem.json"
  machine "$dest/$stem.machine.json"
}

machine() {  # machine FILE: CPU model and flags, threads, date, wall time, the commands of this benchmark
  [ "$DRY" = 1 ] && return 0
  local commands
  commands=$(printf '%s\n' "${COMMANDS[@]}")
  BENCH_COMMANDS=$commands BENCH_STARTED=$STARTED python - "$1" <<'PY'
import json, os, sys, time
import torch
from bertdistill.bench.machine import machine_info
info = machine_info(torch.get_num_threads())
info["date"] = time.strftime("%Y-%m-%d", time.localtime())
info["wall_seconds"] = round(time.time() - float(os.environ["BENCH_STARTED"]), 1)
info["commands"] = [c for c in os.environ["BENCH_COMMANDS"].splitlines() if c]
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump(info, fh, indent=2)
    fh.write("\n")
PY
}

teacher() { echo "$B/sst2-teacher/best"; }
student() { echo "$B/sst2-student-default-s42/student"; }

bench() {  # bench NAME: the benchmark's commands
  case $1 in
  demo)
    run bertdistill demo --output "$B/demo" $EXTRA
    keep "$B/demo/demo.json" demo ;;
  sst2-teacher)
    run bertdistill finetune --task sst2 --data "$D/sst2/glue" --model minilm-l6 --output "$B/sst2-teacher" \
      --epochs 1 --batch-size 32 --lr 5e-5 --max-length 64 --eval-every 500 $EXTRA
    keep "$B/sst2-teacher/results.json" teacher ;;
  sst2-embed)
    run bertdistill embed --task sst2 --data "$D/sst2/glue" --model minilm-l6 --pooling mean \
      --output "$B/sst2-embed.json" $EXTRA
    keep "$B/sst2-embed.json" embed ;;
  sst2-student)
    local out=$B/sst2-student-$TAG-s$SEED
    run bertdistill distill --teacher "$(teacher)" --task sst2 --data "$D/sst2/glue" --recipe distilbert \
      --student-layers every_other --output "$out" --epochs 1 --batch-size 32 --lr 1e-4 --max-length 64 \
      --eval-every 500 --cache-dir "$B/cache" --seed "$SEED" $EXTRA
    keep "$out/results.json" "$TAG-s$SEED" ;;
  sst2-export)
    local f
    for f in onnx onnx-int8; do
      run bertdistill export "$(student)" --format $f --data "$D/sst2/glue" --max-length 64 --output "$B/exports/student-$f"
      keep "$B/exports/student-$f/export.json" "student-$f"
      run bertdistill export "$(teacher)" --format $f --data "$D/sst2/glue" --max-length 64 --output "$B/exports/teacher-$f"
      keep "$B/exports/teacher-$f/export.json" "teacher-$f"
    done ;;
  sst2-speed)
    run bertdistill benchmark "$(teacher)" "$(student)" --names teacher,student --threads 2 \
      --exports-dir "$B/exports" --output "$B/sst2-bench.json" $EXTRA
    keep "$B/sst2-bench.json" sst2-bench
    run bertdistill report "$B/sst2-teacher" "$(dirname "$(student)")" --benchmark "$B/sst2-bench.json" \
      --output docs/sst2-report
    keep docs/sst2-report/report.json report ;;
  textbrewer)
    local out=$B/textbrewer-$TAG-s$SEED
    run python benchmarks/textbrewer_compare.py --epochs 1 --teacher "$(teacher)" --batch-size 32 --max-length 64 \
      --threads 2 --runs "${RUNS:-tb_dynamic,ours_cache}" --seed "$SEED" --out "$out" $EXTRA
    keep "$out/textbrewer_compare.json" "$TAG-s$SEED" ;;
  tinybert)
    run python benchmarks/tinybert_bench.py --teacher "$(teacher)" --data "$D/sst2/glue" --train 4000 --epochs 2 \
      --threads 2 --seed "$SEED" --out "$R/tinybert" --runs "$B/tinybert" \
      --only kd_3L pkd_3L tinybert_3L_two_stage tinybert_3L_all_at_once tinybert_3L_progressive $EXTRA
    run python benchmarks/tinybert_bench.py --seeds-table --out "$R/tinybert"
    machine "$R/tinybert/s$SEED.machine.json" ;;
  tinybert-augment)
    run python benchmarks/tinybert_augment.py --task cola --data "$D/glue/CoLA" --work "$B/tinybert-augment" \
      --out "$R/tinybert-augment" --seeds ${SEEDS:-1 2} $EXTRA
    machine "$R/tinybert-augment/summary.machine.json" ;;
  tinybert-full)
    [ -d "$B/tinybert-full/gd_tb4/student" ] || run env TEACHER="$(teacher)" ART="$B/tinybert-full" \
      bash benchmarks/tinybert_full.sh general
    run env SEED="$SEED" TEACHER="$(teacher)" ART="$B/tinybert-full" bash benchmarks/tinybert_full.sh from-general random speed
    machine "$R/tinybert-full/s$SEED.machine.json" ;;
  mobilebert)
    local s variant recipe out
    for s in ${SEEDS:-42 7}; do
      for variant in progressive all_at_once kd; do
        recipe=benchmarks/recipes/mobilebert_$variant.yaml
        [ "$variant" = progressive ] && recipe=mobilebert_task
        out=$B/mobilebert/$variant-s$s
        run bertdistill distill --teacher "$(teacher)" --task sst2 --data "$D/sst2/glue" --recipe "$recipe" \
          --max-length 64 --cache-dir "$B/cache" --seed "$s" --output "$out" $EXTRA
        keep "$out/results.json" "$variant-s$s"
      done
      local f  # 12 layer stages, then 13_prediction holds the final student
      for f in onnx onnx-int8; do
        run bertdistill export "$B/mobilebert/progressive-s$s/13_prediction/student" --format $f --data "$D/sst2/glue" \
          --max-length 64 --output "$B/mobilebert/progressive-s$s-$f"
        keep "$B/mobilebert/progressive-s$s-$f/export.json" "progressive-s$s-$f"
      done
    done
    machine "$R/mobilebert/run.machine.json" ;;
  bilstm)
    local env=(env BILSTM_WORK="$B/bilstm" SST2_TEACHER="$(teacher)" BILSTM_RESULTS="$R/bilstm")
    run "${env[@]}" python benchmarks/bilstm_sst2.py originals --originals 0
    run "${env[@]}" python benchmarks/bilstm_sst2.py augment --originals 0 --copies 2
    local kind
    for kind in labels noaug aug; do
      run "${env[@]}" python benchmarks/bilstm_sst2.py run $kind --epochs-small 3 --epochs-aug 3 --vector-vocab 100000 \
        --seed "$SEED" --suffix "_v100k_s$SEED" $EXTRA
    done
    run "${env[@]}" python benchmarks/bilstm_sst2.py latency --student-run "bilstm_aug_v100k_s$SEED"
    machine "$R/bilstm/s$SEED.machine.json" ;;
  general)
    local env=(env ART="$B/general" SST2_TEACHER="$(teacher)")
    run "${env[@]}" TEACHER_EPOCHS=2 GENERAL_STEPS=300 GENERAL_BATCH=16 bash benchmarks/general_distill.sh \
      corpora teacher student baselines
    local s
    for s in ${SEEDS:-42 7}; do
      run "${env[@]}" SST2_EXAMPLES=8000 SEED=$s bash benchmarks/general_distill.sh sst2
    done
    machine "$R/general/run.machine.json" ;;
  embedding)
    local art=$B/embedding
    run bertdistill corpus prepare --text "$D/wikitext2/raw/wiki.valid.raw" "$D/wikitext2/raw/wiki.test.raw" \
      --tokenizer minilm-l6 --max-length 128 --output "$art/corpus"
    run bertdistill general-distill --teacher minilm-l6 --corpus "$art/corpus" --recipe general_embedding \
      --student-layers skip --epochs 4 --batch-size 32 --seed "$SEED" --output "$art/student-s$SEED" --no-resume $EXTRA
    keep "$art/student-s$SEED/results.json" "distill_s$SEED"
    run bertdistill embed-eval --model minilm-l6 --model "$art/student-s$SEED/student" \
      --output "$art/embed_eval_s$SEED.json"
    keep "$art/embed_eval_s$SEED.json" "embed_eval_s$SEED" ;;
  conll)
    run bertdistill finetune --task conll2003 --data "$D/conll2003/iob2" --model minilm-l6 --output "$B/conll-teacher" \
      --epochs 2 --batch-size 32 --lr 1e-4 --max-length 128
    keep "$B/conll-teacher/results.json" teacher
    run bertdistill distill --teacher "$B/conll-teacher/best" --task conll2003 --data "$D/conll2003/iob2" \
      --recipe ner_kd --student-layers every_other --output "$B/conll-student" --epochs 2 --batch-size 32 \
      --lr 1e-4 --max-length 128 --cache-dir "$B/cache" $EXTRA
    keep "$B/conll-student/results.json" student ;;
  squad-teacher)
    run bertdistill finetune --task squad --data "$D/squad" --model minilm-l6 --output "$B/squad/teacher" \
      --epochs 2 --batch-size 32 --lr 1e-4 $EXTRA
    keep "$B/squad/teacher/results.json" teacher ;;
  squad-student)
    local s variant recipe out
    for s in ${SEEDS:-42 7}; do
      for variant in ${VARIANTS:-kd labels}; do
        recipe=squad_distilbert
        [ "$variant" = labels ] && recipe=benchmarks/recipes/squad_labels.yaml
        out=$B/squad/student-$variant-s$s
        run bertdistill distill --teacher "$B/squad/teacher/best" --task squad --data "$D/squad" --recipe "$recipe" \
          --lr 1e-4 --cache-dir "$B/cache" --seed "$s" --output "$out" $EXTRA
        keep "$out/results.json" "$variant-s$s"
      done
    done
    run python benchmarks/squad_windows.py --tokenizer "$B/squad/teacher/best" --data "$D/squad" \
      --out "$R/squad-student/windows.json" ;;
  squad-speed)
    local student=$B/squad/student-kd-s${SEED}/student
    run bertdistill export "$student" --format onnx-int8 --data "$D/squad" --output "$B/squad/student-onnx-int8"
    keep "$B/squad/student-onnx-int8/export.json" student-onnx-int8
    run bertdistill benchmark "$B/squad/teacher/best" "$student" "$B/squad/student-onnx-int8" --formats pytorch-fp32 \
      --lengths 384 --threads 2 --names teacher,student,student-int8 --output "$B/squad/bench.json"
    keep "$B/squad/bench.json" bench ;;
  peak-flops)
    local out=$B/peak-flops-$TAG
    run python benchmarks/peak_flops.py --teacher "$(teacher)" --threads 2 --cache --steps 30 --out "$out" $EXTRA
    keep "$out/peak_flops.json" "$TAG" ;;
  corpus)
    run python benchmarks/corpus_scaling.py --sizes-mb 50 200 1024 --workers 2 --work "$B/corpus" --out "$R/corpus" $EXTRA
    machine "$R/corpus/run.machine.json" ;;
  gpu-check)
    run python benchmarks/gpu_check.py --out "$R/gpu-check/gpu_check.json" $EXTRA
    [ "$DRY" = 1 ] || [ ! -f "$R/gpu-check/gpu_check.json" ] || machine "$R/gpu-check/gpu_check.machine.json" ;;
  augment)
    run python benchmarks/augment_throughput.py --out "$R/augment/augment_throughput.json" $EXTRA
    machine "$R/augment/augment_throughput.machine.json" ;;
  student-defaults)
    run python benchmarks/student_defaults.py layers --teacher "$(teacher)" --task sst2 --data "$D/sst2/glue" \
      --variants every_other every_other_last --train 8000 --epochs 1 --max-length 64 --seeds 1 2 \
      --work "$B/student-defaults" --out "$R/student-defaults/layers-sst2.json" $EXTRA
    machine "$R/student-defaults/layers-sst2.machine.json" ;;
  *) echo "benchmarks/run.sh: unknown benchmark '$1' (bash benchmarks/run.sh --list)" >&2; exit 2 ;;
  esac
}

[ $# -gt 0 ] || { echo "usage: bash benchmarks/run.sh [--list] [--dry-run] NAME..." >&2; exit 2; }
todo=()
for arg in "$@"; do
  case $arg in
  --list) echo "$BENCHMARKS" | awk 'NF'; exit 0 ;;
  --dry-run) DRY=1 ;;
  -*) echo "benchmarks/run.sh: unknown option $arg" >&2; exit 2 ;;
  *) names | grep -qx -- "$arg" || { echo "benchmarks/run.sh: unknown benchmark '$arg' (bash benchmarks/run.sh --list)" >&2; exit 2; }
     todo+=("$arg") ;;
  esac
done
[ "$DRY" = 1 ] || { [ -f .venv/bin/activate ] && . .venv/bin/activate; mkdir -p "$B"; }
for NAME in "${todo[@]}"; do
  COMMANDS=()
  STARTED=$(date +%s)
  say "=== $NAME (seed $SEED, tag $TAG)"
  bench "$NAME"
done
