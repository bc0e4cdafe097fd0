"""Recipe: distillation of an extractive-QA teacher (``distill --task squad``).

The steps of ``DistillRecipe`` with QA's data: the questions are cut into the teacher's
windows (``data.qa_features``) and teacher and student both read those windows, so the
student must share the teacher's tokenizer (a student checkpoint whose tokenizer would cut
other windows is refused). A window is one row of the transfer set: the teacher cache keeps
each window's start/end logits (the ``logits`` feature, ``[L, 2]``) and hidden states, trimmed
to its length. Each batch carries the gold positions as ``labels`` ``[B, 2]`` (for
``qa_hard``) and the ``span_mask`` (context tokens and [CLS], for ``qa_kd``). Teacher and
student are scored as SQuAD v1.1 scores them (best span over a question's windows, exact
match and F1); the retention of both is reported.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import torch

from ..data.encode import Collator
from ..data.qa_features import QaOptions, check_qa_tokenizer, encode_qa
from ..distill.qa_losses import SPAN_MASK
from ..metrics import format_metrics
from ..models.loading import load_tokenizer
from ..qa_evaluation import evaluate_qa_features
from .common import seeded_subset
from .distill import DistillConfig, DistillRecipe, check_same_vocabulary
from .qa_finetune import QA_MAX_LENGTH, qa_data_hash

log = logging.getLogger(__name__)

#: the window options a recipe's ``training:`` block may set
RECIPE_WINDOW_KEYS = ("doc_stride", "max_question_length")
PROBE_QUESTIONS = 32  # questions whose windows the student's tokenizer must cut the same way


def qa_distill_options(config: DistillConfig, recipe) -> QaOptions:
    """The windows of a QA distillation: ``config.qa_options`` over the recipe's ``training``
    (``max_length``, ``doc_stride``, ``max_question_length``) over the defaults; checked."""
    given = {k: recipe.training[k] for k in RECIPE_WINDOW_KEYS if k in recipe.training}
    given.update(config.qa_options or {})
    known = set(QaOptions.__dataclass_fields__) - {"max_length"}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown QA option(s) {unknown}; known: {sorted(known)}")
    max_length = config.max_length or int(recipe.training.get("max_length", QA_MAX_LENGTH))
    options = QaOptions(max_length=max_length, **given)
    options.check()
    return options


def check_qa_plan(config: DistillConfig, recipe) -> None:
    """What a QA distillation cannot do, refused before any model is read (ValueError)."""
    from .stages import is_staged

    if (config.student_arch or recipe.student.get("arch")) == "bilstm":
        raise ValueError("--student-arch bilstm reads whole sentences; question answering needs a transformer "
                         "student that scores every token (same or distilbert)")
    if recipe.augment:
        raise ValueError(f"recipe {recipe.name!r} augments the transfer set; augmentation rewrites sentences "
                         "and would move the answer spans: question answering is distilled on its own windows")
    if is_staged(recipe):
        raise ValueError(f"recipe {recipe.name!r} runs in stages; question answering is distilled in one stage "
                         "(use squad_distilbert or a recipe without stages / strategy)")
    if config.compact_embeddings:
        raise ValueError("--compact-embeddings is not supported for question answering")
    qa_distill_options(config, recipe)


def span_mask(features: list[dict], width: int) -> torch.Tensor:
    """``[B, width]``: 1 at [CLS] (index 0) and at the context tokens of each window, else 0."""
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for row, f in enumerate(features):
        mask[row, 0] = 1
        for t, offsets in enumerate(f["context_offsets"]):
            if offsets is not None:
                mask[row, t] = 1
    return mask


def same_windows(teacher_tok, student_tok, examples: list, options: QaOptions, teacher: str, student: str) -> None:
    """Refuse a student tokenizer that cuts other windows than the teacher's (same vocabulary, but
    e.g. other lower-casing or accent stripping) on the first questions of the train split."""
    check_same_vocabulary(teacher_tok, student_tok, teacher, student)
    probe = examples[:PROBE_QUESTIONS]
    if not probe:
        return
    check_qa_tokenizer(student_tok, options)
    ours = encode_qa(probe, teacher_tok, options, desc="teacher windows")
    theirs = encode_qa(probe, student_tok, options, desc="student windows")
    for a, b in zip(ours, theirs):
        if a["input_ids"] != b["input_ids"] or len(ours) != len(theirs):
            question = probe[a["example_index"]]
            raise ValueError(
                f"--student {student}: its tokenizer cuts question {question.id!r} ({question.source}) into other "
                f"windows than the teacher's ({teacher}); teacher and student must read the same windows")


class QaDistillRecipe(DistillRecipe):
    """Distil a QA teacher into a student built from it (or given), on the teacher's windows."""

    def setup(self) -> None:
        from ..distill.recipe import load_recipe

        cfg = self.config
        recipe = load_recipe(cfg.recipe).with_overrides(temperature=cfg.temperature, weights=cfg.weights)
        check_qa_plan(cfg, recipe)  # before data, teacher or cache are read
        self.options = qa_distill_options(cfg, recipe)
        cfg.max_length = self.options.max_length
        # results.json's config then records every window option the run used (the recipe's
        # too), which `bertdistill export` carries into the exported folder
        cfg.qa_options = {k: v for k, v in asdict(self.options).items() if k != "max_length"}
        super().setup()

    def choose_student_arch(self) -> tuple[str, str | None]:
        # DistilBERT's own SQuAD student has no token types: question and context are told apart by
        # [SEP] alone, as in the reference, so the recipe's arch is honoured on this pair task
        return self.config.student_arch or self.recipe.student.get("arch", "same"), None

    def encode_splits(self, train: list, dev: list) -> None:
        check_qa_tokenizer(self.tokenizer, self.options)
        self.train_features = encode_qa(train, self.tokenizer, self.options, desc="train windows")
        self.dev_examples = dev
        self.dev_features = encode_qa(dev, self.tokenizer, self.options, desc=f"{self.config.eval_split} windows")
        self.collator = Collator(self.tokenizer.pad_token_id)
        print(f"{self.task.name}: {len(train)} train questions in {len(self.train_features)} windows, "
              f"{len(dev)} {self.config.eval_split} questions in {len(self.dev_features)} windows", flush=True)

    def _build_student(self, arch: str, layers, num_layers):
        cfg = self.config
        if cfg.student:
            train = seeded_subset(self.data.split("train"), cfg.max_train_examples, self.train_config.seed)
            same_windows(self.tokenizer, load_tokenizer(cfg.student), train, self.options, cfg.teacher, cfg.student)
        return super()._build_student(arch, layers, num_layers)

    def collate(self, items: list[dict]) -> dict:
        batch = self.collator([{k: f[k] for k in ("input_ids", "token_type_ids") if k in f} for f in items])
        batch["labels"] = torch.tensor([[f["start_positions"], f["end_positions"]] for f in items], dtype=torch.long)
        batch[SPAN_MASK] = span_mask(items, batch["input_ids"].shape[1])
        batch["index"] = [f["index"] for f in items]
        return batch

    def evaluate(self) -> dict:
        return evaluate_qa_features(self.student, self.dev_examples, self.dev_features, self.collator,
                                    self.options, self.config.eval_batch_size)

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "doc_stride": self.options.doc_stride,
                "max_question_length": self.options.max_question_length,
                "windows": qa_data_hash(self.train_features)}

    def compare_on_splits(self, student) -> dict:
        """Teacher and best student: exact match, F1 and their retentions on dev (and a labelled test)."""
        results = {}
        for split in [self.config.eval_split, self.config.test_split]:
            examples = self.data.splits.get(split or "", [])
            if not examples or any(not e.label for e in examples):
                continue
            reuse = split == self.config.eval_split and self.config.max_eval_examples is None
            features = self.dev_features if reuse else encode_qa(examples, self.tokenizer, self.options,
                                                                 desc=f"{split} windows")
            row = {}
            for who, model in (("teacher", self.teacher), ("student", student)):
                row[who] = evaluate_qa_features(model, examples, features, self.collator, self.options,
                                                self.config.eval_batch_size)
                print(format_metrics(self.task, row[who], title=f"{who} · {self.task.name} {split}"))
            main = self.task.main_metric
            row["retention"] = row["student"][main] / row["teacher"][main] if row["teacher"][main] else None
            row["f1_retention"] = row["student"]["f1"] / row["teacher"]["f1"] if row["teacher"]["f1"] else None
            results[split] = row
        return results

    def judge(self, results: dict, summary: dict) -> dict | None:
        """Below 90 % of the teacher's F1 on the eval split is warned about (no constant-answer baseline
        exists for spans)."""
        row = results.get(self.config.eval_split)
        if not row or row["f1_retention"] is None:
            return None
        weak = row["f1_retention"] < 0.9
        if weak:
            log.warning("the student keeps %.1f%% of the teacher's F1 on %s (below 90%%): train longer or check "
                        "the recipe", 100 * row["f1_retention"], self.config.eval_split)
        return {"split": self.config.eval_split, "f1_retention": row["f1_retention"], "weak": weak}
