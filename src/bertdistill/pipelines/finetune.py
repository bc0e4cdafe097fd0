"""Recipe: fine-tune a teacher (or any encoder) on a task.

One readable class with explicit steps: ``setup`` (data, tokenizer, model), ``loss_step``
(the model's own task loss: cross-entropy, MSE for regression, token cross-entropy for
NER), ``evaluate`` (the task's metrics on the dev split), ``save_best`` and ``run``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from accelerate.utils import set_seed

from ..data import load_task
from ..data.encode import Collator, encode
from ..evaluation import evaluate_features
from ..metrics import format_metrics
from ..models.inputs import model_inputs
from ..models.loading import load_task_model, load_tokenizer, save_model
from ..training.engine import TrainConfig, TrainLoop
from ..training.validate import check_data_options
from ..writable import check_writable_folder
from .common import jsonable, seeded_subset
from .labels import check_labels
from .runfolder import claim_output
from .small_data import small_data_training
from .verdict import training_numbers, verdict

log = logging.getLogger(__name__)

HEADS = ("default", "textrcnn")


@dataclass
class FinetuneConfig:
    task: str
    model: str
    output: str
    data: str | None = None
    max_length: int = 128
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_split: str = "dev"
    test_split: str | None = "test"
    skip_bad_rows: bool = False
    data_options: dict = field(default_factory=dict)  # column names etc. for csv/tsv/jsonl
    eval_batch_size: int = 64
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=3, lr=5e-5, batch_size=32))
    head: str = "default"  # "default" (the model's own classifier) | "textrcnn" (models/textrcnn.py)
    qa_options: dict = field(default_factory=dict)  # extractive QA windows: data.qa_features.QaOptions fields
    # the TrainConfig fields the user set (None: all of them); the others may follow the data (small_data.py)
    train_given: list[str] | None = None


class FinetuneRecipe:
    """Fine-tune ``config.model`` on ``config.task`` and keep the best dev checkpoint."""

    def __init__(self, config: FinetuneConfig):
        self.config = config
        self.output = Path(config.output)
        self.small_data: str | None = None  # what the small-data defaults changed, if anything

    # ---- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        check_data_options(cfg)  # bad options fail here, before data or models are read
        if cfg.head not in HEADS:
            raise ValueError(f"--head must be one of {', '.join(HEADS)}, got {cfg.head!r}")
        check_writable_folder(cfg.output)  # a read-only --output is said now, not after training
        self.data = load_task(cfg.task, cfg.data, skip_bad_rows=cfg.skip_bad_rows, **cfg.data_options)
        self.task = self.data.task
        if self.data.skipped:
            log.warning("skipped %d bad rows (--skip-bad-rows)", self.data.skipped)
        train = seeded_subset(self.data.split("train"), cfg.max_train_examples, cfg.train.seed)
        print(check_labels(self.task, train, cfg.data), flush=True)
        given = [f.name for f in fields(TrainConfig)] if cfg.train_given is None else cfg.train_given
        cfg.train, self.small_data = small_data_training(cfg.train, len(train), given)
        if self.small_data:
            print(self.small_data, flush=True)
        # --output locked, and a clash with the run its checkpoint holds refused, before any model is loaded
        self.run_lock = claim_output(self.output, cfg.train, recipe="finetune", model=cfg.model,
                                     max_length=cfg.max_length)
        self.tokenizer = load_tokenizer(cfg.model)
        set_seed(cfg.train.seed)  # a new task head is initialised from the seed
        if cfg.head == "textrcnn":
            from ..models.textrcnn import textrcnn_from_encoder

            self.model = textrcnn_from_encoder(cfg.model, self.task)
        else:
            self.model = load_task_model(cfg.model, self.task)
        dev = seeded_subset(self.data.split(cfg.eval_split), cfg.max_eval_examples, cfg.train.seed)
        self.train_features = encode(self.task, train, self.tokenizer, cfg.max_length)
        self.dev_features = encode(self.task, dev, self.tokenizer, cfg.max_length)
        self.collator = Collator(self.tokenizer.pad_token_id)

    # ---- steps ---------------------------------------------------------------------------
    def loss_step(self, module: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        out = module(**model_inputs(_unwrap(module), batch, labels=True))
        return out.loss, {"task": float(out.loss.detach())}

    def evaluate(self) -> dict:
        return evaluate_features(self.model, self.task, self.dev_features, self.collator,
                                 self.config.eval_batch_size)

    def save_best(self, metrics: dict) -> None:
        save_model(self.model, self.tokenizer, self.output / "best", task=self.task,
                   metrics={"dev": metrics})

    def fingerprint(self) -> dict:
        """What, besides the TrainConfig and the data, decides this run (refused on resume if changed)."""
        cfg = self.config
        return {"recipe": "finetune", "task": self.task.name, "model": cfg.model, "max_length": cfg.max_length}

    # ---- run -----------------------------------------------------------------------------
    def train(self) -> dict:
        loop = TrainLoop(
            self.model, self.train_features, self.collator, self.loss_step,
            config=self.config.train, output_dir=self.output, evaluate=self.evaluate,
            main_metric=self.task.main_metric, on_best=self.save_best, progress_desc="fine-tune",
            fingerprint=self.fingerprint(),
        )
        self.loop = loop
        return loop.train()

    def run(self) -> dict:
        """setup → train → evaluate the best checkpoint on dev (and test when labelled)."""
        self.setup()
        summary = self.train()
        if not self.loop.accelerator.is_main_process:
            return summary
        best = self.output / "best"
        results = {"task": self.task.name, "model": self.config.model, "best_dir": str(best),
                   "train": {k: v for k, v in summary.items() if k != "history"},
                   **self.run_details(), "config": jsonable(asdict(self.config))}
        model = self.load_best(best)
        for split in [self.config.eval_split, self.config.test_split]:
            if not split or split not in self.data.splits:
                continue
            metrics = self.evaluate_split(model, split)
            if metrics is None:
                continue
            results[split] = metrics
            print(format_metrics(self.task, metrics, title=f"{self.task.name} {split} ({best})"))
        results["small_data"] = self.small_data
        self.judge(results, summary)
        (self.output / "results.json").write_text(json.dumps(results, indent=2))
        (best / "metrics.json").write_text(json.dumps(
            {k: results[k] for k in results if k in (self.config.eval_split, self.config.test_split)}, indent=2))
        return results

    # ---- the steps of run() that a task kind may change ----------------------------------
    def run_details(self) -> dict:
        """Extra fields of results.json (the task kind's own options)."""
        return {}

    def load_best(self, best: Path):
        return load_task_model(str(best), self.task)

    def evaluate_split(self, model, split: str) -> dict | None:
        """The split's metrics, or None when it has no labels."""
        examples = self.data.splits[split]
        if any(e.label is None for e in examples):
            return None
        reuse = split == self.config.eval_split and self.config.max_eval_examples is None
        feats = self.dev_features if reuse else encode(self.task, examples, self.tokenizer, self.config.max_length)
        return evaluate_features(model, self.task, feats, self.collator, self.config.eval_batch_size)

    def judge(self, results: dict, summary: dict) -> None:
        """The verdict on the eval split: the model against the best constant answer."""
        split = self.config.eval_split
        if split in results:
            results["verdict"] = verdict(
                self.task, results[split][self.task.main_metric], [e.label for e in self.data.splits[split]],
                training_numbers(self.config.train, summary["steps"], len(self.train_features)), split=split,
                who="model")


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "module", module)
