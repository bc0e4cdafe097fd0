"""Recipe: fine-tune a model for extractive question answering (``--task squad``).

The steps of ``FinetuneRecipe`` with QA's data: questions cut into windows
(``data.qa_features``), an ``AutoModelForQuestionAnswering`` whose own loss is the mean of the
start and end cross-entropies, and evaluation as SQuAD v1.1 scores it (best span over the
windows of each question, exact match and F1 against the gold answers).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, fields
from pathlib import Path

import torch
from accelerate.utils import set_seed

from ..data import load_task
from ..data.encode import Collator
from ..data.qa_features import QaOptions, check_qa_tokenizer, encode_qa
from ..models.inputs import model_inputs
from ..models.loading import load_task_model, load_tokenizer
from ..qa_evaluation import evaluate_qa_features
from ..training.engine import TrainConfig
from ..training.validate import check_data_options
from ..writable import check_writable_folder
from .common import seeded_subset
from .finetune import FinetuneConfig, FinetuneRecipe
from .runfolder import claim_output
from .small_data import small_data_training

log = logging.getLogger(__name__)

QA_MAX_LENGTH = QaOptions.max_length  # the window length when --max-length is not given


def qa_options(config: FinetuneConfig) -> QaOptions:
    """The run's windowing options: ``config.qa_options`` over the defaults, ``max_length`` from the config."""
    given = dict(config.qa_options or {})
    known = {f.name for f in fields(QaOptions)} - {"max_length"}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown QA option(s) {unknown}; known: {sorted(known)}")
    return QaOptions(max_length=config.max_length or QA_MAX_LENGTH, **given)


def qa_data_hash(features) -> str:
    """sha256 over each window's token ids, token types and answer positions, in order."""
    h = hashlib.sha256()
    for f in features:
        h.update(json.dumps([f["input_ids"], f.get("token_type_ids"), f.get("start_positions"),
                             f.get("end_positions")]).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


class QaFinetuneRecipe(FinetuneRecipe):
    """Fine-tune ``config.model`` on a QA task and keep the best dev checkpoint (by the task's
    main metric, exact match)."""

    def setup(self) -> None:
        cfg = self.config
        check_data_options(cfg)
        if cfg.head != "default":
            raise ValueError(f"--head {cfg.head} classifies whole texts; question answering uses the model's "
                             "own span head (leave --head out)")
        self.options = qa_options(cfg)
        self.options.check()
        check_writable_folder(cfg.output)
        self.data = load_task(cfg.task, cfg.data, skip_bad_rows=cfg.skip_bad_rows, **cfg.data_options)
        self.task = self.data.task
        if self.data.skipped:
            log.warning("skipped %d bad questions (--skip-bad-rows)", self.data.skipped)
        train = seeded_subset(self.data.split("train"), cfg.max_train_examples, cfg.train.seed)
        self.dev_examples = seeded_subset(self.data.split(cfg.eval_split), cfg.max_eval_examples, cfg.train.seed)
        print(f"{self.task.name}: {len(train)} train questions, {len(self.dev_examples)} {cfg.eval_split} "
              f"questions", flush=True)
        given = [f.name for f in fields(TrainConfig)] if cfg.train_given is None else cfg.train_given
        cfg.train, self.small_data = small_data_training(cfg.train, len(train), given)
        if self.small_data:
            print(self.small_data, flush=True)
        self.run_lock = claim_output(self.output, cfg.train, recipe="finetune", model=cfg.model,
                                     max_length=self.options.max_length)
        self.tokenizer = load_tokenizer(cfg.model)
        check_qa_tokenizer(self.tokenizer, self.options)
        set_seed(cfg.train.seed)  # the new span head is initialised from the seed
        self.model = load_task_model(cfg.model, self.task)
        self.train_features = encode_qa(train, self.tokenizer, self.options, desc="train windows")
        self.dev_features = encode_qa(self.dev_examples, self.tokenizer, self.options,
                                      desc=f"{cfg.eval_split} windows")
        self.collator = Collator(self.tokenizer.pad_token_id)

    def loss_step(self, module: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        inputs = model_inputs(getattr(module, "module", module), batch)  # start/end_positions included
        out = module(**inputs)
        return out.loss, {"span": float(out.loss.detach())}

    def evaluate(self) -> dict:
        return evaluate_qa_features(self.model, self.dev_examples, self.dev_features, self.collator,
                                    self.options, self.config.eval_batch_size)

    def fingerprint(self) -> dict:
        cfg = self.config
        return {"recipe": "finetune", "task": self.task.name, "model": cfg.model,
                "max_length": self.options.max_length, "doc_stride": self.options.doc_stride,
                "max_question_length": self.options.max_question_length,
                "data": qa_data_hash(self.train_features)}

    def run_details(self) -> dict:
        return {"qa_options": asdict(self.options)}

    def load_best(self, best: Path):
        return load_task_model(str(best), self.task, trained_head=True)

    def evaluate_split(self, model, split: str) -> dict:
        """The best checkpoint's EM / F1 over the split's questions (every window of each)."""
        if split == self.config.eval_split:
            examples, features = self.dev_examples, self.dev_features
        else:
            examples = self.data.splits[split]
            features = encode_qa(examples, self.tokenizer, self.options, desc=f"{split} windows")
        return evaluate_qa_features(model, examples, features, self.collator, self.options,
                                    self.config.eval_batch_size)

    def judge(self, results: dict, summary: dict) -> None:
        """No constant-answer verdict: a span task has no majority class."""
