"""Benchmark ``bilstm``: BiLSTM students on SST-2 with and without augmentation / a teacher.

    python benchmarks/bilstm_sst2.py originals   # the seeded SST-2 subset as a transfer-set file
    python benchmarks/bilstm_sst2.py augment     # Tang-augmented transfer set (+ throughput)
    python benchmarks/bilstm_sst2.py run NAME    # NAME in: aug, aug3, aug3_mix, noaug, labels (BiLSTM); tf, tf_aug (3 layers)
    python benchmarks/bilstm_sst2.py augment-tinybert   # TinyBERT-augmented subset for the 3-layer student
    python benchmarks/bilstm_sst2.py latency     # teacher vs BiLSTM, batch 1, interleaved

Every phase writes JSON under $BILSTM_RESULTS (default benchmarks/results/bilstm/); transfer
sets, runs and the teacher cache go to $BILSTM_WORK (default runs/bench/bilstm), the teacher is
$SST2_TEACHER (default runs/bench/sst2-teacher/best). Runs use one torch thread. Sizes: a seeded subset
of ``--originals`` SST-2 train phrases; the augmented set adds ``--copies`` Tang copies
of each (p_mask 0.1, p_pos 0.1, p_ng 0.25; duplicates dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bertdistill import api  # noqa: E402
from bertdistill.augment import build_transfer_set  # noqa: E402
from bertdistill.data import load_task  # noqa: E402
from bertdistill.paths import shared_data_dir  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bilstm"
WORK = Path(os.environ.get("BILSTM_WORK", "runs/bench/bilstm"))  # transfer sets, recipes, runs, cache
TEACHER = os.environ.get("SST2_TEACHER", "runs/bench/sst2-teacher/best")
RESULTS = Path(os.environ.get("BILSTM_RESULTS", str(RESULTS)))
DATA = str(shared_data_dir() / "sst2" / "glue")
STUDENT = {"arch": "bilstm", "embeddings": "glove", "freeze_embeddings": False, "hidden_size": 150, "mlp_size": 200,
           "dropout": 0.1}
TRAINING = {"lr": 1.0e-3, "batch_size": 50, "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 5.0,
            "max_length": 64, "seed": 42}


def originals(n: int, seed: int = 0):
    """A seeded subset of ``n`` SST-2 train phrases (all of them when ``n`` is 0 or too large)."""
    train = load_task("sst2", DATA).split("train")
    if not n or n >= len(train):
        return list(train)
    return [train[i] for i in sorted(random.Random(seed).sample(range(len(train)), n))]


def write_json(name: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(data, indent=2, default=str))
    print(json.dumps(data, indent=2, default=str))


def phase_originals(a) -> None:
    """The un-augmented transfer set: the same seeded originals, as a file the recipes read."""
    from bertdistill.augment import write_transfer_set

    write_transfer_set(WORK / "sst2_originals.jsonl", originals(a.originals),
                       {"method": None, "originals": a.originals, "seed": 0})


def phase_augment(a) -> None:
    examples = originals(a.originals)
    out, meta = build_transfer_set(examples, "tang", copies=a.copies, seed=0, output=WORK / "sst2_tang.jsonl",
                                   p_mask=0.1, p_pos=0.1, p_ng=0.25)
    write_json("augment_tang.json", {"file": str(WORK / "sst2_tang.jsonl"), **meta})


def phase_augment_tinybert(a) -> None:
    """TinyBERT augmentation (GloVe neighbours: the MiniLM teacher has no masked-LM head) of a smaller subset."""
    from bertdistill.augment import write_transfer_set

    examples = originals(a.tf_originals)
    write_transfer_set(WORK / "sst2_tf_originals.jsonl", examples, {"method": None, "originals": a.tf_originals})
    out, meta = build_transfer_set(examples, "tinybert", copies=a.tf_copies, seed=0,
                                   output=WORK / "sst2_tinybert.jsonl", p=0.4, top_k=15)
    write_json("augment_tinybert.json", {"file": str(WORK / "sst2_tinybert.jsonl"), **meta})


def recipe(name: str, terms: list, epochs: float, augment: dict | None, student: dict | None = None,
           training: dict | None = None) -> str:
    import yaml

    data = {"name": name, "student": student or STUDENT, "terms": terms,
            "training": {**(training or TRAINING), "epochs": epochs}}
    if augment:
        data["augment"] = augment
    path = WORK / "recipes" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def phase_run(a) -> None:
    mse = [{"loss": "logits_mse", "weight": 1.0}]
    variants = {
        "aug": ("bilstm_aug", mse, a.epochs_aug, {"file": str(WORK / "sst2_tang.jsonl")}),
        "aug3": ("bilstm_aug_e3", mse, 3, {"file": str(WORK / "sst2_tang.jsonl")}),
        "aug3_mix": ("bilstm_aug_e3_mix", mse + [{"loss": "hard", "weight": 1.0}], 3,
                     {"file": str(WORK / "sst2_tang.jsonl")}),
        "noaug": ("bilstm_noaug", mse, a.epochs_small, {"file": str(WORK / "sst2_originals.jsonl")}),
        "labels": ("bilstm_labels", [{"loss": "hard", "weight": 1.0}], a.epochs_small,
                   {"file": str(WORK / "sst2_originals.jsonl")}),
    }
    kd = [{"loss": "kd_kl", "weight": 1.0, "temperature": 2.0}, {"loss": "hard", "weight": 0.5}]
    three = {"arch": "same", "layers": [0, 2, 4]}
    tf_training = {"lr": 5.0e-5, "batch_size": 32, "warmup_ratio": 0.1, "max_length": 64, "seed": a.seed}
    transformer = {
        "tf": ("tf3_noaug", kd, 3, {"file": str(WORK / "sst2_tf_originals.jsonl")}),
        "tf_aug": ("tf3_tinybert", kd, 1, {"file": str(WORK / "sst2_tinybert.jsonl")}),
    }
    if a.name in transformer:
        name, terms, epochs, augment = transformer[a.name]
        name += a.suffix
        path = recipe(name, terms, epochs, augment, student=three, training=tf_training)
    else:
        name, terms, epochs, augment = variants[a.name]
        name += a.suffix
        path = recipe(name, terms, epochs, augment)
    start = time.time()
    result = api.distill(TEACHER, "sst2", str(WORK / "runs" / name), DATA, recipe=path,
                         cache_dir=str(WORK / "cache"),
                         train={"seed": a.seed, "eval_every": a.eval_every}, eval_batch_size=64,
                         test_split=None if a.name in transformer else "test")  # tf runs: dev only (time)
    result["wall_s"] = round(time.time() - start, 1)
    result["recipe_yaml"] = Path(path).read_text()
    write_json(f"run_{a.name}{a.suffix}.json", result)


def phase_latency(a) -> None:
    from bertdistill.bench.latency import folder_bytes, parameter_count
    from bertdistill.models.loading import load_task_model, load_tokenizer
    from bertdistill.models.inputs import model_inputs
    from bertdistill.students.bilstm import load_bilstm

    task = load_task("sst2", DATA)
    texts = [e.text for e in task.split("dev")][: a.texts]
    teacher, t_tok = load_task_model(TEACHER, task.task).eval(), load_tokenizer(TEACHER)
    student_dir = WORK / "runs" / a.student_run / "student"
    student, s_tok = load_bilstm(student_dir)
    models = {"teacher": (teacher, lambda t: model_inputs(teacher, dict(t_tok(t, truncation=True, max_length=64,
                                                                               return_tensors="pt")))),
              "bilstm": (student, lambda t: s_tok(t, max_length=64, return_tensors="pt"))}
    inputs = {k: [fn(t) for t in texts] for k, (_, fn) in models.items()}
    times = {k: [] for k in models}
    with torch.inference_mode():
        for rnd in range(a.rounds):
            for i in range(len(texts)):
                for k, (model, _) in models.items():  # interleaved: one teacher call, one student call
                    start = time.perf_counter()
                    model(**inputs[k][i])
                    if rnd > 0:  # round 0 is warm-up
                        times[k].append((time.perf_counter() - start) * 1000)
    out = {"threads": torch.get_num_threads(), "texts": len(texts), "timed_rounds": a.rounds - 1,
           "calls_each": len(times["teacher"])}
    for k, (model, _) in models.items():
        ms = sorted(times[k])
        out[k] = {"median_ms": statistics.median(ms), "p90_ms": ms[int(0.9 * (len(ms) - 1))],
                  "mean_ms": statistics.fmean(ms), "parameters": parameter_count(model),
                  "bytes": folder_bytes(TEACHER if k == "teacher" else student_dir)}
    out["speedup_median"] = out["teacher"]["median_ms"] / out["bilstm"]["median_ms"]
    out["speedup_mean"] = out["teacher"]["mean_ms"] / out["bilstm"]["mean_ms"]
    out["size_ratio"] = out["teacher"]["bytes"] / out["bilstm"]["bytes"]
    write_json("latency.json", out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=["originals", "augment", "augment-tinybert", "run", "latency"])
    ap.add_argument("name", nargs="?", default="aug")
    ap.add_argument("--originals", type=int, default=6000)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--epochs-aug", type=float, default=1)
    ap.add_argument("--eval-every", type=int, default=None, help="optimizer steps between dev evaluations")
    ap.add_argument("--epochs-small", type=float, default=10)
    ap.add_argument("--tf-originals", type=int, default=2000)
    ap.add_argument("--tf-copies", type=int, default=2)
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--student-run", default="bilstm_aug", help="latency: the run folder (under WORK/runs) timed")
    ap.add_argument("--vector-vocab", type=int, default=0,
                    help="BiLSTM runs: add the N most frequent GloVe words to the student's vocabulary")
    ap.add_argument("--seed", type=int, default=42, help="training seed of the run phase")
    ap.add_argument("--suffix", default="", help="appended to run folder and JSON names (e.g. _v100k_s1)")
    a = ap.parse_args()
    if a.vector_vocab:
        STUDENT["vector_vocab"] = a.vector_vocab
    TRAINING["seed"] = a.seed
    torch.set_num_threads(1)
    phases = {"originals": phase_originals, "augment": phase_augment, "augment-tinybert": phase_augment_tinybert,
              "run": phase_run, "latency": phase_latency}
    phases[a.phase](a)


if __name__ == "__main__":
    main()
