"""Time the QA data path on its own: reading SQuAD and cutting every question into windows.

Prints (and with --out writes) the seconds of reading the train and dev files and of building
the windows of each split with the given tokenizer and window options, so that the share of
feature building in a QA run's wall time can be stated.

    python benchmarks/squad_windows.py --tokenizer runs/bench/squad/teacher/best \
        --data ../shared/data/squad --out benchmarks/results/squad-student/windows.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bertdistill.bench.machine import machine_info
from bertdistill.data import load_task
from bertdistill.data.qa_features import QaOptions, encode_qa
from bertdistill.models.loading import load_tokenizer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokenizer", required=True, help="model folder (or alias) whose tokenizer cuts the windows")
    p.add_argument("--data", default=None, help="SQuAD folder (default: the shared copy)")
    p.add_argument("--max-length", type=int, default=QaOptions.max_length)
    p.add_argument("--doc-stride", type=int, default=QaOptions.doc_stride)
    p.add_argument("--max-question-length", type=int, default=QaOptions.max_question_length)
    p.add_argument("--out", default=None, help="write the JSON result here")
    args = p.parse_args()
    options = QaOptions(max_length=args.max_length, doc_stride=args.doc_stride,
                        max_question_length=args.max_question_length)
    started = time.perf_counter()
    data = load_task("squad", args.data)
    result = {"read_seconds": time.perf_counter() - started, "options": vars(args), "splits": {}}
    tokenizer = load_tokenizer(args.tokenizer)
    for split in ("train", "dev"):
        examples = data.split(split)
        started = time.perf_counter()
        features = encode_qa(examples, tokenizer, options, desc=f"{split} windows")
        seconds = time.perf_counter() - started
        result["splits"][split] = {"questions": len(examples), "windows": len(features), "seconds": seconds,
                                   "questions_per_s": len(examples) / seconds}
        print(f"{split}: {len(examples)} questions -> {len(features)} windows in {seconds:.1f} s")
    print(f"reading both files: {result['read_seconds']:.1f} s")
    result["machine"] = machine_info(1)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
