"""Throughput of every augmentation family on the same SST-2 phrases (benchmark ``augment``).

    python benchmarks/augment_throughput.py [--originals 1000] [--copies 4] [--out FILE]

For each family: fit + N copies of each of a seeded subset of SST-2 train phrases
(duplicates dropped), one torch/BLAS thread. Reports new examples per second, the
transfer-set size and how many copies were distinct. Writes --out (default
benchmarks/results/augment/augment_throughput.json).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bertdistill.augment import augment_examples, build_augmenter  # noqa: E402
from bertdistill.data import load_task  # noqa: E402
from bertdistill.paths import shared_data_dir  # noqa: E402

DEFAULTS = {"tang": {}, "tinybert": {}, "wordnet": {"p": 0.1}, "tfidf": {"p": 0.1}, "typo": {"p": 0.1},
            "unigram": {"p": 0.1}, "blank": {"p": 0.1}, "shuffle": {"window": 3}, "contraction": {"p": 0.5},
            "crossover": {}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--originals", type=int, default=1000)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--only", nargs="*", default=None, help="re-measure these families, keep the others' rows")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "augment" / "augment_throughput.json")
    a = ap.parse_args()
    path = a.out
    path.parent.mkdir(parents=True, exist_ok=True)
    train = load_task("sst2", str(shared_data_dir() / "sst2" / "glue")).split("train")
    examples = [train[i] for i in sorted(random.Random(0).sample(range(len(train)), a.originals))]
    rows = json.loads(path.read_text())["families"] if a.only and path.is_file() else {}
    for name, params in DEFAULTS.items():
        if a.only and name not in a.only:
            continue
        start = time.perf_counter()
        augmenter = build_augmenter(name, **params)
        loaded = time.perf_counter()
        out = augment_examples(examples, augmenter, copies=a.copies, seed=0, progress=False)
        done = time.perf_counter()
        new = len(out) - len(examples)
        rows[name] = {"params": params, "load_s": round(loaded - start, 2), "augment_s": round(done - loaded, 2),
                      "new_examples": new, "transfer_set": len(out), "distinct_fraction": new / (a.copies * len(examples)),
                      "examples_per_s": round(new / (done - loaded), 1)}
        print(name, rows[name], flush=True)
    out = {"originals": a.originals, "copies": a.copies, "data": "SST-2 GLUE train, seeded subset (random.Random(0))",
           "families": rows}
    path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
