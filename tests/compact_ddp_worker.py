"""Run by tests/test_compact_ddp.py under torchrun: one short task distillation of the toy task
(argv: teacher, data folder, output folder, 1 for --compact-embeddings or 0 for the dense matrix)."""

from __future__ import annotations

import sys

from bertdistill import api


def main(teacher: str, data: str, out: str, compact: bool) -> None:
    train = {"max_steps": 6, "batch_size": 8, "lr": 1e-3, "max_grad_norm": 0.0, "seed": 3, "eval_every": 3}
    api.distill(teacher, "tsv", out, data, recipe="kd_hidden_mse", cache_dir=out + "-cache", max_train_examples=96,
                max_eval_examples=32, test_split=None, latency_runs=0, train=train, compact_embeddings=compact)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1")
