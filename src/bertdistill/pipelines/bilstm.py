"""Recipe: distil a fine-tuned transformer teacher into the word-level BiLSTM student.

Built on :class:`DistillRecipe` (same engine, config, CLI and results layout); what
differs is the student's side. The student reads words through its own vocabulary
(built from the transfer set) while the teacher reads its own word pieces of the same
example: the teacher's logits are computed once per example (``distill/cache.py``,
keyed by the teacher's token ids, so augmented copies get their own outputs) and looked
up by example index in each batch. Only losses on logits apply (``logits_mse`` by
default, Tang et al.; ``hard`` mixes in the label cross-entropy).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch
from accelerate.utils import set_seed

from ..augment.spec import transfer_examples
from ..bench.latency import folder_bytes, parameter_count
from ..data import load_task
from ..data.encode import Collator, encode
from ..distill.cache import TeacherCache, default_cache_dir
from ..distill.losses import LOSSES, build_loss
from ..distill.recipe import load_recipe
from ..evaluation import evaluate_features
from ..models.loading import load_task_model, load_tokenizer
from ..students import bilstm as B
from ..training.engine import TrainConfig, make_accelerator
from .distill import DistillConfig, DistillRecipe
from .plan import announce
from .common import jsonable, seeded_subset
from .runfolder import claim_output, distill_fields

log = logging.getLogger(__name__)

#: losses that compare sequence-level logits (or gold labels): the only ones a BiLSTM has
BILSTM_LOSSES = ("logits_mse", "kd_kl", "soft_ce", "hard")
BILSTM_DEFAULTS = {"embeddings": "glove", "freeze_embeddings": False, "embedding_dim": None, "hidden_size": 150,
                   "mlp_size": 200, "dropout": 0.1, "min_freq": 1, "vector_vocab": None}
#: GloVe words added to a glove student's vocabulary when the recipe does not say (measured on SST-2:
#: dev 0.7718 -> 0.8555 with the Tang set, because dev words unseen in training keep their vectors)
DEFAULT_VECTOR_VOCAB = 100_000


def wants_bilstm(config: DistillConfig) -> bool:
    """Whether ``config`` asks for the BiLSTM student (``--student-arch`` or the recipe's arch)."""
    if config.student_arch is not None:
        return config.student_arch == "bilstm"
    return load_recipe(config.recipe).student.get("arch") == "bilstm"


def recipe_for(config: DistillConfig) -> DistillRecipe:
    """The recipe class of ``config``: BiLSTM student, extractive QA (``--task squad``) or the plain one."""
    from ..data.tasks import task_kind

    if task_kind(config.task) == "qa":
        from .qa_distill import QaDistillRecipe

        return QaDistillRecipe(config)
    return (BiLSTMDistillRecipe if wants_bilstm(config) else DistillRecipe)(config)


def check_bilstm_terms(terms, task_kind: str | None, recipe_name: str) -> None:
    """Refuse, before any loading, terms a BiLSTM cannot serve (hidden states, attention maps...);
    ``task_kind`` None (not known yet) checks the terms alone."""
    for t in terms:
        if t.loss not in BILSTM_LOSSES or t.student != "logits" or t.teacher != "logits":
            raise ValueError(
                f"--student-arch bilstm: recipe {recipe_name!r} term {t.name!r} ({t.loss} on {t.student}/{t.teacher}) "
                f"needs a transformer student; the bilstm student has no hidden states or attention maps. "
                f"Use losses on logits only ({', '.join(BILSTM_LOSSES)}), e.g. --recipe bilstm"
            )
        if task_kind == "regression" and LOSSES[t.loss].soft_targets and t.weight > 0:
            raise ValueError(f"term {t.name!r} ({t.loss}) compares class distributions; a regression task "
                             "has one output: use logits_mse")
    if task_kind == "token_classification":
        raise ValueError("the bilstm student classifies sentences (and pairs); token classification needs a "
                         "transformer student")


def check_bilstm_student(student: dict) -> dict:
    """The recipe's BiLSTM options over the defaults, checked (before any model is read).

    ``vector_vocab`` (the N most frequent GloVe words added to the vocabulary) needs GloVe."""
    options = {**BILSTM_DEFAULTS, **{k: v for k, v in student.items() if k in BILSTM_DEFAULTS}}
    B.BiLSTMConfig(vocab_size=3, num_labels=1, embeddings=options["embeddings"])  # the embeddings choice
    if options["vector_vocab"] is None:
        options["vector_vocab"] = DEFAULT_VECTOR_VOCAB if options["embeddings"] == "glove" else 0
    n = options["vector_vocab"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"student.vector_vocab must be a whole number >= 0 (GloVe words added), got {n!r}")
    if n and options.get("embeddings") != "glove":
        raise ValueError(f"student.vector_vocab {n} adds GloVe's words, which only embeddings: glove can "
                         f"initialise; got embeddings: {options.get('embeddings')!r} (set vector_vocab: 0)")
    return options


class BiLSTMDistillModule(torch.nn.Module):
    """The student and the weighted logits terms."""

    def __init__(self, student: B.BiLSTMClassifier, terms, task_kind: str):
        super().__init__()
        self.student = student
        self.terms = [t for t in terms if t.weight > 0]
        self.losses = torch.nn.ModuleDict()
        for t in self.terms:
            params = dict(t.params)
            if t.loss == "hard":
                params.setdefault("regression", task_kind == "regression")
            self.losses[t.name] = build_loss(t.loss, t.temperature, **params)

    def forward(self, batch: dict, teacher_feats: dict) -> tuple[torch.Tensor, dict]:
        inputs = {k: v for k, v in batch.items() if k.startswith(("input_ids", "attention_mask"))}
        logits = self.student(**inputs).logits
        total = logits.new_zeros(())
        parts = {}
        for t in self.terms:
            loss = self.losses[t.name]
            if loss.needs_teacher:
                value = loss(logits, teacher_feats["logits"].to(logits.dtype))
            else:  # gold labels of the original examples only (augmented copies have none)
                labels = batch["labels"]
                known = ~labels.isnan() if labels.is_floating_point() else labels != -100
                value = loss(logits[known], None, labels=labels[known]) if known.any() else logits.sum() * 0
            total = total + t.weight * value
            parts[t.name] = float(value.detach())
        return total, parts


class BiLSTMDistillRecipe(DistillRecipe):
    """``DistillRecipe`` with the BiLSTM student (``--student-arch bilstm`` / recipe ``bilstm``)."""

    def setup(self) -> None:
        cfg = self.config
        self.recipe = load_recipe(cfg.recipe).with_overrides(temperature=cfg.temperature, weights=cfg.weights)
        if cfg.student or cfg.student_config or cfg.student_layers is not None:
            raise ValueError("--student / --student-config / --student-layers describe transformer students; "
                             "they do not apply to --student-arch bilstm")
        if cfg.compact_embeddings:
            raise ValueError("--compact-embeddings trains a transformer student's word-piece embeddings; the "
                             "bilstm student has its own word vocabulary: run without it")
        self.options = check_bilstm_student(self.recipe.student)
        self.train_config = TrainConfig.merged(self.recipe.training, cfg.train)
        self.max_length = cfg.max_length or int(self.recipe.training.get("max_length", 128))
        self.run_lock = claim_output(self.output, self.train_config, **distill_fields(cfg, self.recipe))
        self.data = load_task(cfg.task, cfg.data, skip_bad_rows=cfg.skip_bad_rows, **cfg.data_options)
        self.task = self.data.task
        check_bilstm_terms(self.recipe.terms, self.task.kind, self.recipe.name)
        if self.options["embeddings"] == "glove":
            from ..data.glove import glove_dir

            glove_dir()  # a missing vector package is reported before any work
        train = seeded_subset(self.data.split("train"), cfg.max_train_examples, self.train_config.seed)
        if not train:
            raise ValueError(f"the transfer set is empty: task {self.task.name!r} has no train examples")
        dev = seeded_subset(self.data.split(cfg.eval_split), cfg.max_eval_examples, self.train_config.seed)
        self.augment_meta = None
        if self.recipe.augment:
            train, self.augment_meta = transfer_examples(self.recipe.augment, train, self.output)
        self.transfer = train
        self.tokenizer = load_tokenizer(cfg.teacher)
        self.teacher = load_task_model(cfg.teacher, self.task)
        self.teacher.eval().requires_grad_(False)
        self.collator = B.WordCollator()
        self.teacher_collator = Collator(self.tokenizer.pad_token_id)

        self.words = B.WordTokenizer.build([t for e in train for t in (e.text, e.text_pair) if t],
                                           min_freq=int(self.options["min_freq"]))
        if self.options["vector_vocab"]:  # words unseen in training keep their pre-trained vectors
            from ..data.glove import load_glove

            self.words = self.words.extended(load_glove().words[: int(self.options["vector_vocab"])])
        self.train_features = B.encode_words(self.task, train, self.words, self.max_length)
        for i, f in enumerate(self.train_features):
            f["index"] = i
        self.dev_features = B.encode_words(self.task, dev, self.words, self.max_length)
        set_seed(self.train_config.seed)
        self.student = self._build_bilstm()
        self.student_info = None
        self.module = BiLSTMDistillModule(self.student, self.recipe.terms, self.task.kind)
        self.accelerator = make_accelerator(self.train_config)
        self.teacher.to(self.accelerator.device)
        self.cache = None
        if any(LOSSES[t.loss].needs_teacher and t.weight > 0 for t in self.recipe.terms):
            with self.accelerator.main_process_first():
                self._label_with_teacher(train)
        announce(self)  # the plan, printed and written to run_config.json before training

    def _build_bilstm(self) -> B.BiLSTMClassifier:
        o, words = self.options, self.words.words
        if o["embeddings"] == "glove":
            table, hits = B.glove_embeddings(words)
        elif o["embeddings"] == "teacher":
            table, hits = B.teacher_embeddings(words, self.tokenizer,
                                               self.teacher.get_input_embeddings().weight)
        else:
            table, hits = B.random_embeddings(len(words), int(o["embedding_dim"] or 300), self.train_config.seed), 0
        if o["embedding_dim"] and int(o["embedding_dim"]) != table.shape[1]:
            raise ValueError(f"student.embedding_dim {o['embedding_dim']} does not match the {o['embeddings']} "
                             f"vectors ({table.shape[1]}); leave it out or use embeddings: random")
        log.info("bilstm vocabulary: %d words, %d initialised from %s", len(words), hits, o["embeddings"])
        self.embedding_hits = hits
        config = B.BiLSTMConfig(
            vocab_size=len(words), num_labels=self.task.num_labels, embedding_dim=int(table.shape[1]),
            hidden_size=int(o["hidden_size"]), mlp_size=int(o["mlp_size"]), dropout=float(o["dropout"]),
            pair=self.task.pair, kind=self.task.kind, freeze_embeddings=bool(o["freeze_embeddings"]),
            embeddings=o["embeddings"], id2label=dict(self.task.id2label) if self.task.labels else {},
        )
        model = B.BiLSTMClassifier(config)
        with torch.no_grad():
            model.embeddings.weight.copy_(table)
        return model

    def _label_with_teacher(self, train) -> None:
        """The teacher's logits for every transfer example, once, from its own tokenisation."""
        unlabelled = [dataclasses.replace(e, label=None) for e in train]
        feats = encode(self.task, unlabelled, self.tokenizer, self.max_length)
        root = Path(self.config.cache_dir) if self.config.cache_dir else default_cache_dir()
        if self.augment_meta is not None:  # augmented sets get their own folder, named by their spec
            root = root / f"transfer-{self.augment_meta['key']}"
        self.cache = TeacherCache.load_or_build(self.teacher, feats, ["logits"], cache_dir=root,
                                                pad_token_id=self.tokenizer.pad_token_id,
                                                precision=self.train_config.mixed_precision,
                                                attention=self.config.cache_attention)

    def teacher_features(self, batch: dict) -> dict:
        if self.cache is None:
            return {}
        return self.cache.lookup(batch["index"], 1, device=batch["input_ids"].device)

    def evaluate(self) -> dict:
        return evaluate_features(self.student, self.task, self.dev_features, self.collator,
                                 self.config.eval_batch_size)

    def save_best(self, metrics: dict) -> None:
        B.save_bilstm(self.student, self.words, self.output / "student", metrics={"dev": metrics})

    def split_features(self, who: str, examples: list, reuse: bool):
        """The teacher reads its word pieces, the student its own words (and the best student's vocabulary)."""
        if who == "teacher":
            return encode(self.task, examples, self.tokenizer, self.max_length), self.teacher_collator
        if reuse:
            return self.dev_features, self.collator
        return B.encode_words(self.task, examples, self.words, self.max_length), self.collator

    def run(self) -> dict:
        self.setup()
        summary = self.train()
        if not self.loop.accelerator.is_main_process:
            return summary
        best = self.output / "student"
        student, words = B.load_bilstm(best)
        results = {
            "task": self.task.name, "teacher": self.config.teacher, "student_dir": str(best),
            "recipe": self.recipe.name,
            "student": {"arch": "bilstm", "parameters": parameter_count(student), "bytes": folder_bytes(best),
                        "vocabulary": len(words), "embeddings": self.options["embeddings"],
                        "embedding_hits": self.embedding_hits, "frozen": bool(self.options["freeze_embeddings"])},
            "transfer_set": {"examples": len(self.transfer), "augmentation": self.augment_meta},
            "teacher_cache": str(self.cache.path) if self.cache else None,
            "train": {k: v for k, v in summary.items() if k != "history"},
            "config": jsonable(dataclasses.asdict(self.config)),
        }
        results.update(self.compare_on_splits(student))
        (self.output / "results.json").write_text(json.dumps(jsonable(results), indent=2))
        return results

