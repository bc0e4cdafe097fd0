"""Recipe: task distillation of a fine-tuned teacher into a smaller student.

Explicit steps, torchtune style: ``setup`` (data, teacher, student, distiller, teacher
cache), ``loss_step`` (teacher features, from the cache or a no-grad forward; student
features; the distiller's weighted terms), ``evaluate``, ``save_best``, ``run``.
Which losses, on which features and layers, comes from a YAML recipe (data, not code).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed

from ..data import load_task
from ..data.encode import Collator, encode
from ..distill.cache import TeacherCache, default_cache_dir, weights_digest
from ..distill.distiller import Distiller
from ..distill.features import extract, prepare_model
from ..distill.recipe import load_recipe
from ..evaluation import evaluate_features
from ..metrics import format_metrics
from ..models import compact_embedding
from ..models.inputs import model_inputs
from ..models.loading import load_task_model, load_tokenizer, save_model
from ..report.command import invoking_command
from ..students import StudentInfo, build_student, student_from_config
from ..students.defaults import choose_arch
from ..training.engine import TrainConfig, TrainLoop, make_accelerator
from ..training.validate import check_distill_options
from ..writable import check_writable_folder
from .common import jsonable, seeded_subset
from .plan import announce
from .runfolder import claim_output, distill_fields
from .small_data import small_data_training
from .verdict import training_numbers, verdict

log = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    teacher: str
    task: str
    output: str
    data: str | None = None
    recipe: str = "distilbert"
    student_arch: str | None = None          # "same" | "distilbert" (default: the recipe's)
    student_layers: object = None            # int, preset name or list (default: the recipe's)
    student: str | None = None               # an existing student checkpoint (e.g. general distillation)
    student_config: dict | None = None       # random init of another shape, e.g. {"hidden_size": 128, ...}
    temperature: float | None = None
    weights: dict | None = None              # term name -> weight overrides
    max_length: int | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_split: str = "dev"
    test_split: str | None = "test"
    skip_bad_rows: bool = False
    data_options: dict = field(default_factory=dict)  # column names etc. for csv/tsv/jsonl
    cache_teacher: bool = True
    cache_dir: str | None = None
    cache_max_gb: float = 8.0
    cache_attention: str | None = None       # the teacher's attention kernel for the cache build (None: its own)
    compact_embeddings: bool = False         # train only the word-embedding rows the train set reads (models/compact_embedding.py)
    qa_options: dict = field(default_factory=dict)  # extractive QA windows: data.qa_features.QaOptions fields
    eval_batch_size: int = 64
    train: dict = field(default_factory=dict)  # TrainConfig overrides on top of the recipe's


class DistillModule(torch.nn.Module):
    """What the optimizer trains: the student and the distiller's learned connectors."""

    def __init__(self, student: torch.nn.Module, distiller: Distiller):
        super().__init__()
        self.student = student
        self.distiller = distiller

    def forward(self, batch: dict, teacher_feats: dict) -> tuple[torch.Tensor, dict]:
        want = self.distiller.student_needs
        out = self.student(**model_inputs(self.student, batch),
                           output_hidden_states=want.hidden_states, output_attentions=want.attentions)
        student_feats = extract(out, self.distiller.student_keys)
        return self.distiller(student_feats, teacher_feats, batch)


class DistillRecipe:
    """Distil ``config.teacher`` into a student built from it, as the YAML recipe says."""

    def __init__(self, config: DistillConfig):
        self.config = config
        self.output = Path(config.output)
        self.cache: TeacherCache | None = None
        self.cache_plan: dict | None = None  # set before the plan is printed (None: say what self.cache is)
        self.small_data: str | None = None  # what the small-data defaults changed, if anything

    # ---- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        check_distill_options(cfg)  # bad options fail here, before data, teacher or cache are read
        check_writable_folder(cfg.output)
        self.recipe = load_recipe(cfg.recipe).with_overrides(temperature=cfg.temperature, weights=cfg.weights)
        self.train_config = TrainConfig.merged(self.recipe.training, cfg.train)
        self.max_length = cfg.max_length or int(self.recipe.training.get("max_length", 128))
        self.data = load_task(cfg.task, cfg.data, skip_bad_rows=cfg.skip_bad_rows, **cfg.data_options)
        self.task = self.data.task
        # small data: more optimizer steps unless the user chose them (augmented sets are large)
        rows = len(self.data.split("train"))
        rows = 0 if self.recipe.augment else min(rows, cfg.max_train_examples or rows)
        self.train_config, self.small_data = small_data_training(self.train_config, rows, cfg.train)
        # --output locked, and a clash with the run its checkpoint holds refused, before any model is loaded
        self.run_lock = claim_output(self.output, self.train_config, **distill_fields(cfg, self.recipe))
        self.tokenizer = load_tokenizer(cfg.teacher)
        self.teacher = load_task_model(cfg.teacher, self.task, attn_implementation="eager")
        self.teacher.eval().requires_grad_(False)
        arch, note = self.choose_student_arch()
        if note:
            log.warning(note)
        layers = cfg.student_layers if cfg.student_layers is not None else self.recipe.student.get("layers", "every_other")
        num_layers = layers if isinstance(layers, int) else None
        set_seed(self.train_config.seed)  # connectors and any new weights start from the seed
        self.student, self.student_info = self._build_student(arch, layers, num_layers)
        self.distiller = Distiller(
            self.recipe.terms, student_config=self.student.config, teacher_config=self.teacher.config,
            kept=self.student_info.kept, task_kind=self.task.kind,
        )
        # Only what the terms compare is computed: sdpa attention when no term needs maps,
        # else attention recorded before dropout (scores and probabilities).
        prepare_model(self.student, self.distiller.student_needs)
        prepare_model(self.teacher, self.distiller.teacher_needs)
        self.module = DistillModule(self.student, self.distiller)
        train = seeded_subset(self.data.split("train"), cfg.max_train_examples, self.train_config.seed)
        dev = seeded_subset(self.data.split(cfg.eval_split), cfg.max_eval_examples, self.train_config.seed)
        if self.recipe.augment:  # an augmented transfer set (bertdistill.augment); the teacher labels the copies
            from ..augment.spec import fill_missing_labels, transfer_examples

            train, self.augment_meta = transfer_examples(self.recipe.augment, train, self.output,
                                                         task=self.task, terms=self.recipe.terms)
        self.encode_splits(train, dev)
        if self.recipe.augment:
            fill_missing_labels(self.train_features)
        for i, f in enumerate(self.train_features):
            f["index"] = i
        self.accelerator = make_accelerator(self.train_config)
        self.teacher.to(self.accelerator.device)
        self.cache_plan = self._plan_cache()
        announce(self)  # print the plan, write run_config.json before the teacher cache and training
        if self.small_data and self.accelerator.is_main_process:
            print(f"  {self.small_data}", flush=True)
        with self.accelerator.main_process_first():  # one process builds the cache, the others read it
            self._setup_cache()

    def choose_student_arch(self) -> tuple[str, str | None]:
        """(the student's arch, a warning or None): --student-arch, else the recipe's (students/defaults.py)."""
        return choose_arch(self.config.student_arch, self.recipe.student.get("arch", "same"), self.task.pair)

    def encode_splits(self, train: list, dev: list) -> None:
        """``train_features``, ``dev_features`` and ``collator``: the teacher's tokens of both splits."""
        self.train_features = encode(self.task, train, self.tokenizer, self.max_length)
        self.dev_features = encode(self.task, dev, self.tokenizer, self.max_length)
        self.collator = Collator(self.tokenizer.pad_token_id)

    def _build_student(self, arch: str, layers, num_layers):
        """Copied from the teacher (default), loaded from a checkpoint, or randomly initialised."""
        cfg = self.config
        if cfg.student:
            check_same_vocabulary(self.tokenizer, load_tokenizer(cfg.student), cfg.teacher, cfg.student)
            student = load_task_model(cfg.student, self.task, attn_implementation="eager")
            return student, StudentInfo(arch=student.config.model_type, kept=None,
                                        teacher_layers=self.teacher.config.num_hidden_layers)
        shape = cfg.student_config or self.recipe.student.get("shape")
        if shape:
            student = student_from_config(
                shape, self.task.kind, self.task.num_labels, arch="distilbert" if arch == "distilbert" else "bert",
                tokenizer_vocab_size=len(self.tokenizer), id2label=self.task.id2label, attn_implementation="eager",
                teacher_hidden_size=self.teacher.config.hidden_size,
            )
            return student, StudentInfo(arch=student.config.model_type, kept=None,
                                        teacher_layers=self.teacher.config.num_hidden_layers)
        return build_student(self.teacher, layers=layers, num_layers=num_layers, arch=arch,
                             attn_implementation="eager")

    def _plan_cache(self) -> dict:
        """Whether the teacher's outputs will be cached, and under which folder (shown in the plan)."""
        cfg = self.config
        keys = self.distiller.teacher_keys
        if not cfg.cache_teacher or not keys:
            return {"enabled": False, "path": None}
        size = TeacherCache.estimate_bytes(self.teacher.config, self.train_features, keys)
        if size > cfg.cache_max_gb * 2**30:
            log.warning("teacher cache would take %.1f GB (> %.1f GB): computing teacher outputs live",
                        size / 2**30, cfg.cache_max_gb)
            return {"enabled": False, "path": None}
        return {"enabled": True, "path": str(Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir())}

    def _setup_cache(self) -> None:
        cfg = self.config
        if not self.cache_plan["enabled"]:
            return
        keys = self.distiller.teacher_keys
        self.cache = TeacherCache.load_or_build(self.teacher, self.train_features, keys, cache_dir=cfg.cache_dir,
                                                pad_token_id=self.tokenizer.pad_token_id,
                                                precision=self.train_config.mixed_precision,
                                                attention=cfg.cache_attention)

    def collate(self, items: list[dict]) -> dict:
        batch = self.collator([{k: v for k, v in f.items() if k != "index"} for f in items])
        batch["index"] = [f["index"] for f in items]
        return batch

    # ---- steps ---------------------------------------------------------------------------
    def teacher_features(self, batch: dict) -> dict:
        length = batch["input_ids"].shape[1]
        if self.cache is not None:
            return self.cache.lookup(batch["index"], length, device=batch["input_ids"].device)
        want = self.distiller.teacher_needs
        with torch.no_grad():
            out = self.teacher(**model_inputs(self.teacher, batch), output_hidden_states=want.hidden_states,
                               output_attentions=want.attentions)
        return {k: v.float() for k, v in extract(out, self.distiller.teacher_keys).items()}

    def loss_step(self, module: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        return module(batch, self.teacher_features(batch))

    def evaluate(self) -> dict:
        return evaluate_features(self.student, self.task, self.dev_features, self.collator,
                                 self.config.eval_batch_size)

    def save_best(self, metrics: dict) -> None:
        with compact_embedding.full_vocabulary(self.student) as student:
            save_model(student, self.tokenizer, self.output / "student", task=self.task, metrics={"dev": metrics})

    def fingerprint(self) -> dict:
        """What, besides the TrainConfig and the data, decides this run (refused on resume if changed)."""
        cfg, info = self.config, self.student_info  # info is None for students not built from teacher layers
        return {
            "recipe": self.recipe.name, "terms": [asdict(t) for t in self.recipe.terms], "task": self.task.name,
            "max_length": self.max_length, "teacher": cfg.teacher, "teacher_weights": weights_digest(self.teacher),
            "student": {"arch": info.arch if info else cfg.student_arch or self.recipe.student.get("arch"),
                        "kept": info.kept if info else None, "from": cfg.student, "config": cfg.student_config},
            **({"compact_embeddings": True} if cfg.compact_embeddings else {}),
        }

    # ---- run -----------------------------------------------------------------------------
    def train(self) -> dict:
        compact = None
        if self.config.compact_embeddings:  # before the optimizer is built: it trains the compact rows
            compact = compact_embedding.install(self.student, compact_embedding.used_token_ids(self.train_features))
        self.loop = TrainLoop(
            self.module, self.train_features, self.collate, self.loss_step,
            config=self.train_config, output_dir=self.output, evaluate=self.evaluate,
            main_metric=self.task.main_metric, on_best=self.save_best, progress_desc="distill",
            accelerator=self.accelerator, fingerprint=self.fingerprint(),
        )
        hook = compact.track(self.loop.optimizer) if compact is not None else None
        try:
            return self.loop.train()
        finally:
            if hook is not None:
                hook.remove()
                compact_embedding.restore_dense(self.student)

    def run(self) -> dict:
        """setup → train → evaluate teacher and best student on dev (and labelled test)."""
        self.setup()
        summary = self.train()
        if not self.loop.accelerator.is_main_process:
            return summary
        best = self.output / "student"
        student = load_task_model(str(best), self.task)
        results = {
            "task": self.task.name, "teacher": self.config.teacher, "student_dir": str(best),
            "recipe": self.recipe.name, "student": {"arch": self.student_info.arch, "kept_layers": self.student_info.kept},
            "teacher_cache": str(self.cache.path) if self.cache else None,
            "train": {k: v for k, v in summary.items() if k != "history"},
            "config": jsonable(asdict(self.config)),
            "command": invoking_command(),  # None when run from Python (the API, the demo)
        }
        results.update(self.compare_on_splits(student))
        results["small_data"] = self.small_data
        results["verdict"] = self.judge(results, summary)
        (self.output / "results.json").write_text(json.dumps(jsonable(results), indent=2))
        return results

    def judge(self, results: dict, summary: dict) -> dict | None:
        """The verdict on the eval split: the best student against a constant answer and the teacher."""
        split, main = self.config.eval_split, self.task.main_metric
        if split not in results:
            return None
        row = results[split]
        return verdict(self.task, row["student"][main], [e.label for e in self.data.splits[split]],
                       training_numbers(self.train_config, summary["steps"], len(self.train_features)),
                       teacher=row["teacher"][main], split=split)

    def compare_on_splits(self, student) -> dict:
        """Teacher and best student on dev (and a labelled test split): metrics and retention."""
        results = {}
        for split in [self.config.eval_split, self.config.test_split]:
            examples = self.data.splits.get(split or "", [])
            if not examples or any(e.label is None for e in examples):
                continue
            reuse = split == self.config.eval_split and self.config.max_eval_examples is None
            row = {}
            for who, model in (("teacher", self.teacher), ("student", student)):
                feats, collator = self.split_features(who, examples, reuse)
                row[who] = evaluate_features(model, self.task, feats, collator, self.config.eval_batch_size)
                print(format_metrics(self.task, row[who], title=f"{who} · {self.task.name} {split}"))
            main = self.task.main_metric
            row["retention"] = row["student"][main] / row["teacher"][main] if row["teacher"][main] else None
            results[split] = row
        return results

    def split_features(self, who: str, examples: list, reuse: bool) -> tuple[list[dict], Collator]:
        """Encoded ``examples`` for the teacher or the student (both read the teacher's tokens here)."""
        feats = self.dev_features if reuse else encode(self.task, examples, self.tokenizer, self.max_length)
        return feats, self.collator


def check_same_vocabulary(teacher_tok, student_tok, teacher_name: str, student_name: str) -> None:
    """Teacher and student read the same token ids, or the comparison is meaningless."""
    t_vocab, s_vocab = teacher_tok.get_vocab(), student_tok.get_vocab()
    if t_vocab != s_vocab:
        only_t = len(set(t_vocab) - set(s_vocab))
        only_s = len(set(s_vocab) - set(t_vocab))
        raise ValueError(
            f"the teacher's tokenizer ({teacher_name}, {len(t_vocab)} tokens) and the student's "
            f"({student_name}, {len(s_vocab)} tokens) differ: {only_t} tokens only in the teacher's, "
            f"{only_s} only in the student's, or the same tokens with other ids. Teacher and student must "
            "share one vocabulary for these losses; build the student from the teacher instead."
        )


