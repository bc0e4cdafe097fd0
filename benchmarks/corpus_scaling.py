"""Throughput and peak memory of `bertdistill corpus prepare` as the corpus grows; masker speed.

Each size runs the real CLI in a child process; a sampler adds up the resident memory of
that process and its worker processes every 0.1 s (the peak of the sum is reported, along
with the main process's own peak from the kernel, ``ru_maxrss``). Corpora beyond WikiText-2
(valid + test, raw) are that text repeated whole until its token ids reach the asked size;
the repeated text files go to --work (never into the repository).

    python benchmarks/corpus_scaling.py --sizes-mb 50 200 1024 --workers 2 \\
        --work runs/bench/corpus --out benchmarks/results/corpus

Writes one JSON per run into --out (``prepare_<label>.json``) and ``masker.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from bertdistill.paths import shared_data_dir  # noqa: E402

WIKI = ("wiki.valid.raw", "wiki.test.raw")


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_prepare(texts: list[Path], output: Path, tokenizer: str, workers: int, max_length: int) -> dict:
    """Run `bertdistill corpus prepare --force` in a child process; time it and watch its memory."""
    cmd = [sys.executable, "-m", "bertdistill.cli", "corpus", "prepare", "--text", *map(str, texts),
           "--tokenizer", tokenizer, "--output", str(output), "--workers", str(workers),
           "--max-length", str(max_length), "--force", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, done = [0], threading.Event()

    def sample() -> None:
        proc = psutil.Process(child.pid)
        while not done.is_set():
            try:
                peak[0] = max(peak[0], tree_rss(proc))
            except psutil.Error:
                return
            done.wait(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = child.stdout.read(), child.stderr.read()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr}")
    meta = json.loads((output / "meta.json").read_text())
    return {
        "command": " ".join(cmd), "stdout": stdout.strip(), "wall_seconds": round(seconds, 2),
        "prepare_seconds": meta["seconds"], "tokens": meta["tokens"], "sequences": meta["sequences"],
        "id_bytes": meta["tokens"] * (2 if meta["dtype"] == "uint16" else 4), "dtype": meta["dtype"],
        "shards": len(meta["shards"]), "text_bytes": sum(p.stat().st_size for p in texts),
        "tokens_per_second": round(meta["tokens"] / meta["seconds"], 1),
        "peak_rss_tree_mib": round(peak[0] / 2**20, 1),
        "peak_rss_main_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "workers": workers, "max_length": max_length,
    }


def repeated_text(base: list[Path], times: int, path: Path) -> Path:
    """WikiText-2 valid + test written ``times`` times into one file (reused if already there)."""
    size = sum(p.stat().st_size for p in base) * times
    if path.exists() and path.stat().st_size == size:
        return path
    tmp = path.with_suffix(".tmp")
    chunks = [p.read_bytes() for p in base]
    with open(tmp, "wb") as f:
        for _ in range(times):
            for chunk in chunks:
                f.write(chunk)
    os.replace(tmp, path)
    return path


def masker_speed(folder: Path, batch: int, batches: int) -> dict:
    import numpy as np
    import torch

    from bertdistill.corpus import MlmCollator, MlmMasker, TokenShards, continuation_mask, masking_probabilities
    from bertdistill.models.loading import load_tokenizer

    shards = TokenShards(folder)
    specials = list(shards.meta["special_ids"].values())
    probs = masking_probabilities(shards.token_counts, special_ids=specials)
    ids = shards.meta["special_ids"]
    out = {"batch_size": batch, "batches": batches}
    tok = load_tokenizer(shards.meta["tokenizer"])
    for threads, whole_word in ((1, False), (1, True), (2, False)):
        torch.set_num_threads(threads)
        masker = MlmMasker(probs, mask_token_id=ids["mask"], vocab_size=shards.vocab_size, whole_word=whole_word,
                           continuation=continuation_mask(tok) if whole_word else None)
        collate = MlmCollator(shards, ids["pad"], masker, base_seed=0)
        order = np.random.default_rng(0).permutation(len(shards))[: batch * batches]
        items = [{"input_ids": shards[int(i)], "index": int(i)} for i in order]
        start = time.perf_counter()
        for b in range(batches):
            collate(items[b * batch : (b + 1) * batch], epoch=0)
        seconds = time.perf_counter() - start
        key = f"{'whole_word' if whole_word else 'token'}_threads{threads}"
        out[key] = {"sequences_per_second": round(batch * batches / seconds, 1),
                    "tokens_per_second": round(int(sum(len(x["input_ids"]) for x in items)) / seconds, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=float, nargs="*", default=[50, 200, 1024],
                        help="token-id sizes (MiB of uint16) of the repeated corpora")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tokenizer", default="minilm-l6")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--work", type=Path, default=Path("runs/bench/corpus"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "corpus")
    parser.add_argument("--keep", action="store_true", help="keep the prepared folders and repeated texts")
    parser.add_argument("--masker-batches", type=int, default=50)
    parser.add_argument("--masker-only", action="store_true",
                        help="only time the masker, on the WikiText-2 folder of an earlier run in --work")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    base = [shared_data_dir() / "wikitext2" / "raw" / name for name in WIKI]
    host = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}

    def save(label: str, result: dict) -> None:
        result = {"label": label, **result, "host": host, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        (args.out / f"prepare_{label}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"{label}: {result['tokens']:,} tokens ({result['id_bytes'] / 2**20:,.1f} MiB ids) in "
              f"{result['prepare_seconds']:.1f} s = {result['tokens_per_second']:,.0f} tokens/s, peak RSS "
              f"{result['peak_rss_tree_mib']:,.0f} MiB (main {result['peak_rss_main_mib']:,.0f})", flush=True)

    wiki_out = args.work / "wikitext2"
    if args.masker_only:
        masker = masker_speed(wiki_out, 32, args.masker_batches)
        (args.out / "masker.json").write_text(json.dumps({**masker, "host": host}, indent=2) + "\n")
        print("masker:", json.dumps(masker), flush=True)
        return
    for workers in sorted({1, args.workers}):
        wiki = run_prepare(base, wiki_out, args.tokenizer, workers, args.max_length)
        save(f"wikitext2_w{workers}", wiki)
    ids_per_text_byte = wiki["id_bytes"] / wiki["text_bytes"]
    masker = masker_speed(wiki_out, 32, args.masker_batches)
    (args.out / "masker.json").write_text(json.dumps({**masker, "host": host}, indent=2) + "\n")
    print("masker:", json.dumps(masker), flush=True)

    for size in args.sizes_mb:
        times = math.ceil(size * 2**20 / ids_per_text_byte / wiki["text_bytes"])
        text = repeated_text(base, times, args.work / f"wikitext2_x{times}.txt")
        output = args.work / f"ids_{int(size)}mb"
        result = run_prepare([text], output, args.tokenizer, args.workers, args.max_length)
        save(f"repeat_x{times}_{int(size)}mb", {**result, "repeats": times})
        if not args.keep:
            shutil.rmtree(output)
            text.unlink()


if __name__ == "__main__":
    main()
