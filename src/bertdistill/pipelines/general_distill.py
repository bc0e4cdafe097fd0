"""Recipe: general (pre-training) distillation of a masked-LM teacher on raw text.

DistilBERT's central step (Sanh et al., 2019): before any task, a smaller student learns to
imitate a masked-LM teacher on a large unlabelled corpus. Here the corpus is a folder of
prepared, memory-mapped token shards (``bertdistill corpus prepare``) read batch by batch,
in length-grouped batches; each batch is masked anew every time a sequence is seen (seeded by
seed, epoch and sequence index, so the run is the same on one process or many). Which
losses are compared comes from a YAML recipe: ``general_distilbert`` (5·KL at T=2 ·T² +
2·masked-LM cross-entropy + 1·cosine of the last hidden states) or ``general_tinybert``
(TinyBERT's general stage: embedding, pre-softmax attention-score and hidden-state MSE, one
shared W_h) or ``general_minilm`` (MiniLMv2: the query-query, key-key and value-value
relations of one teacher layer and the student's last layer) or ``general_embedding`` (the
student's pooled sentence vector matches the teacher's, pooling read from the teacher's
sentence-transformers folder; :mod:`.embedding_student`). A recipe with a layer-wise
``strategy`` (``general_mobilebert``: MobileBERT's progressive knowledge transfer) runs one
such recipe per stage (:mod:`.general_stages`). Attention compared by a recipe
is recorded inside the attention, before dropout; Q/K/V projections by hooks on their Linears.

A recipe none of whose terms reads logits (``general_minilm``) needs no masked-LM head: the
teacher is loaded as a plain encoder (``AutoModel``: a fine-tuned or sentence-embedding model
will do), both models read the unmasked sequences, and the student is built and saved as a
plain encoder (``BertModel``, ``DistilBertModel``, ...), which ``AutoModel`` and
``AutoModelFor*`` load and ``bertdistill distill --student`` starts from.

The student is the recipe's architecture (``student_arch`` overrides it): a
``DistilBertForMaskedLM`` built from a list of teacher layers (weights mapped by
``students.distilbert``, the vocabulary transform and projector from the teacher's MLM head),
the teacher's own class (``same``), or a randomly initialised narrower one
(``student_config``, else the recipe's ``student.shape``: e.g. the ``tinybert4`` or
``mobilebert12`` preset) bridged by learned projections. The engine (``training.TrainLoop``) brings accumulation, bf16, checkpoints with
exact resume and multi-process data parallelism (accelerate / torchrun).

Steps, torchtune style: ``setup`` / ``loss_step`` / ``evaluate`` / ``train`` / ``save`` / ``run``.
"""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed

from ..distill.distiller import Distiller
from ..distill.features import extract, prepare_model
from ..distill.losses import LOSSES
from ..distill.recipe import load_recipe
from ..distill.vocab_chunks import DEFAULT_VOCAB_CHUNK, ChunkedMLMModule, chunked_module
from ..models.inputs import model_inputs
from ..models.loading import (hub_errors, load_tokenizer, pretrained_kwargs, quiet_transformers, resolve_model,
                              save_model)
from ..models.mlm import check_has_mlm_head, load_encoder, load_mlm_teacher
from ..students import StudentInfo, build_student, student_from_config
from ..students.from_config import shape_sizes
from ..training.engine import TrainConfig, TrainLoop, make_accelerator
from ..training.validate import check_output
from .distill import DistillModule
from .embedding_student import save_sentence_student, with_teacher_pooling
from .runfolder import claim_output
from .mlm_batches import check_vocabulary, corpus_fingerprint, evaluate_mlm, masked_batches, open_corpora


@dataclass
class GeneralDistillConfig:
    teacher: str
    corpus: str
    output: str
    recipe: str = "general_distilbert"
    eval_corpus: str | None = None
    tokenizer: str | None = None             # default: the teacher's
    student_arch: str | None = None          # "distilbert" (default: the recipe's) | "same"
    student_layers: object = None            # preset, count or 0-based list (default: the recipe's)
    student_config: dict | None = None       # random narrower student, e.g. {"hidden_size": 192, ...}
    temperature: float | None = None
    weights: dict | None = None
    mlm_probability: float = 0.15
    smoothing: float = 0.7
    whole_word: bool = False
    max_eval_sequences: int | None = None
    eval_batch_size: int = 16
    eval_seed: int = 1234
    init_only: bool = False                  # save the student as built, without distilling (baselines)
    vocab_chunk: int = DEFAULT_VOCAB_CHUNK   # positions per chunk of the masked-LM terms, 0 = all at once
    train: dict = field(default_factory=dict)  # TrainConfig overrides on top of the recipe's


def needs_teacher_logits(recipe) -> bool:
    """Whether any weighted term compares the teacher's (masked-LM) logits."""
    return any(t.weight and t.teacher == "logits" and LOSSES[t.loss].needs_teacher for t in recipe.terms)


def reads_logits(recipe) -> bool:
    """Whether any weighted term reads masked-LM logits, of the student or of the teacher; if none
    does, both models are plain encoders (no masked-LM head is loaded, built or saved)."""
    return any(t.weight and "logits" in (t.student, t.teacher) for t in recipe.terms)


def known_run_fields(config: GeneralDistillConfig, recipe) -> dict:
    """The fields of a general distillation's fingerprint, besides its training settings, that the
    config and the recipe tell before any model or data is read (compared with a checkpoint's)."""
    return {"recipe": recipe.name, "terms": [asdict(t) for t in recipe.terms], "teacher": config.teacher,
            "masking": {"mlm_probability": config.mlm_probability, "smoothing": config.smoothing,
                        "whole_word": config.whole_word}}


def peak_memory_mb(device: torch.device | None = None) -> float:
    """Peak memory of this process: CUDA max allocated on a GPU, else the max resident set size."""
    if device is not None and device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


class GeneralDistillRecipe:
    def __init__(self, config: GeneralDistillConfig):
        self.config = config
        self.output = Path(config.output)

    # ---- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        from transformers import AutoConfig

        cfg = self.config
        if not isinstance(cfg.vocab_chunk, int) or cfg.vocab_chunk < 0:
            raise ValueError(f"--vocab-chunk must be a whole number >= 0 (0 = no chunks), got {cfg.vocab_chunk!r}")
        self.recipe = load_recipe(cfg.recipe).with_overrides(temperature=cfg.temperature, weights=cfg.weights)
        # a sentence_embedding term: the teacher's pooling / normalisation, read from its folder
        self.recipe, self.sentence = with_teacher_pooling(self.recipe, cfg.teacher)
        check_output(cfg.output)  # an existing file is refused before anything is read
        self.encoder_only = not reads_logits(self.recipe)
        if self.encoder_only and cfg.eval_corpus:
            raise ValueError(f"--eval-corpus {cfg.eval_corpus}: the {self.recipe.name} recipe compares no masked-LM "
                             "logits, so the student has no trained masked-LM head to score; leave --eval-corpus out")
        self.train_config = TrainConfig.merged(self.recipe.training, cfg.train)
        # Everything that can be checked without weights first: teacher head, vocabulary, shards.
        wants_logits = needs_teacher_logits(self.recipe)
        if wants_logits:
            teacher_config = check_has_mlm_head(cfg.teacher, flag="--teacher")
        else:
            with quiet_transformers(), hub_errors(cfg.teacher):
                teacher_config = AutoConfig.from_pretrained(resolve_model(cfg.teacher), **pretrained_kwargs())
        self._check_student_arch(teacher_config)
        tok_name = cfg.tokenizer or cfg.teacher
        self.tokenizer = load_tokenizer(tok_name)
        check_vocabulary(self.tokenizer, teacher_config, model_flag=f"--teacher {cfg.teacher}",
                         tokenizer_name=f"--tokenizer {tok_name}" if cfg.tokenizer else f"of {tok_name}",
                         model=cfg.teacher if cfg.tokenizer else None)
        self.shards, self.eval_shards = open_corpora(cfg, self.tokenizer)
        if cfg.student_config is not None and not isinstance(cfg.student_config, dict):
            raise ValueError(f"--student-config must be a JSON object, got {cfg.student_config!r}")
        # --output locked, a clash with its checkpoint's run refused
        self.run_lock = claim_output(self.output, self.train_config, **known_run_fields(cfg, self.recipe))

        attn = "eager"  # switched to sdpa below when no term compares attention maps
        if self.encoder_only:
            self.teacher = load_encoder(cfg.teacher, attn_implementation=attn)
        else:
            self.teacher = load_mlm_teacher(cfg.teacher, attn_implementation=attn, require_head=wants_logits)
        self.teacher.eval().requires_grad_(False)
        set_seed(self.train_config.seed)  # the student's new weights and the connectors
        self.student, self.student_info = self._build_student(attn)
        if self.student.config.vocab_size != self.teacher.config.vocab_size:
            raise ValueError(f"--student-config: vocab_size {self.student.config.vocab_size} differs from the "
                             f"teacher's {self.teacher.config.vocab_size}; leave it out")
        self.distiller = Distiller(
            self.recipe.terms, student_config=self.student.config, teacher_config=self.teacher.config,
            kept=self.student_info.kept, task_kind="token_classification",
        )
        # attention compared: recorded inside the attention, before dropout; otherwise sdpa
        prepare_model(self.student, self.distiller.student_needs)
        prepare_model(self.teacher, self.distiller.teacher_needs)
        # masked-LM terms over chunks of positions: no [tokens, vocab] tensor is ever whole
        self.module = (chunked_module(self.student, self.distiller, self.teacher, cfg.vocab_chunk)
                       or DistillModule(self.student, self.distiller))
        if isinstance(self.module, ChunkedMLMModule):
            print(f"masked-LM terms computed {cfg.vocab_chunk} real tokens at a time (--vocab-chunk; 0 = all at once)")

        self.examples, self.collate, self.eval_collator = masked_batches(
            cfg, self.tokenizer, self.shards, self.eval_shards, seed=self.train_config.seed,
            epoch=lambda: self.loop.state.epoch)
        self.accelerator = make_accelerator(self.train_config)
        self.teacher.to(self.accelerator.device)

    def _check_student_arch(self, teacher_config) -> None:
        """A DistilBERT student is mapped from BERT (or DistilBERT) teachers only: refuse another
        family from its config, before any weights load."""
        cfg = self.config
        arch = cfg.student_arch or self.recipe.student.get("arch", "distilbert")
        family = getattr(teacher_config, "model_type", None)
        if cfg.student_config is not None or arch != "distilbert" or family in ("bert", "distilbert"):
            return
        shown = ", ".join(getattr(teacher_config, "architectures", None) or []) or family
        default = "" if cfg.student_arch else f" (the {self.recipe.name} recipe's default student)"
        why = (" RoBERTa's position ids start at padding_idx + 1 and its LayerNorm eps is 1e-5 where DistilBERT "
               "counts from 0 and hard-codes 1e-12, so the copied layers would not compute what the teacher "
               "computes." if family == "roberta" else "")
        raise ValueError(
            f"--teacher {cfg.teacher} is a {shown}: a DistilBertForMaskedLM student{default} is mapped "
            f"from BERT teachers only.{why} Pass --student-arch same (a shallower {family} masked-LM from the "
            "teacher's layers, the way DistilRoBERTa is built) or --student-config for a random narrower student")

    def _build_student(self, attn: str):
        cfg = self.config
        arch = cfg.student_arch or self.recipe.student.get("arch", "distilbert")
        shape = cfg.student_config if cfg.student_config is not None else self.recipe.student.get("shape")
        if shape is not None:  # a random student: --student-config, else the recipe's student.shape
            shape = shape_sizes(shape)  # a preset name (tinybert4, mobilebert12, ...) to its sizes
            sizes = {"max_position_embeddings": self.teacher.config.max_position_embeddings,
                     "pad_token_id": self.teacher.config.pad_token_id, **shape}
            kind = "base" if self.encoder_only else "masked_lm"
            student = student_from_config(sizes, kind, 2, arch="bert" if arch == "same" else arch,
                                          tokenizer_vocab_size=self.teacher.config.vocab_size,
                                          attn_implementation=attn,
                                          teacher_hidden_size=self.teacher.config.hidden_size)
            return student, StudentInfo(arch=student.config.model_type, kept=None,
                                        teacher_layers=self.teacher.config.num_hidden_layers)
        layers = cfg.student_layers if cfg.student_layers is not None else self.recipe.student.get("layers", "skip")
        num_layers = layers if isinstance(layers, int) else None
        return build_student(self.teacher, layers=layers, num_layers=num_layers, arch=arch,
                             attn_implementation=attn)

    # ---- steps ---------------------------------------------------------------------------
    def teacher_features(self, batch: dict) -> dict:
        if isinstance(self.module, ChunkedMLMModule):  # the encoder only: its head runs chunk by chunk
            return self.module.teacher_features(batch)
        want = self.distiller.teacher_needs
        with torch.no_grad():
            out = self.teacher(**model_inputs(self.teacher, batch), output_hidden_states=want.hidden_states,
                               output_attentions=want.attentions)
        return extract(out, self.distiller.teacher_keys)

    def loss_step(self, module: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        if self.encoder_only:  # no masked-LM objective: both models read the text as it is
            batch = {**batch, "input_ids": batch["original_input_ids"]}
        return module(batch, self.teacher_features(batch))

    def evaluate(self) -> dict:
        return evaluate_mlm(self.student, self.eval_shards, self.eval_collator,
                            batch_size=self.config.eval_batch_size, max_sequences=self.config.max_eval_sequences,
                            desc="student mlm eval")

    def save(self, metrics: dict | None = None) -> Path:
        path = save_model(self.student, self.tokenizer, self.output / "student",
                          metrics={"held_out": metrics} if metrics else None)
        if self.sentence is not None:  # a sentence-transformers folder too
            save_sentence_student(path, self.sentence, self.student, self.distiller)
        return path

    def fingerprint(self) -> dict:
        """What decides this run besides the TrainConfig (a resume with other values is refused).
        The data is named by the corpus's own fingerprint: the shards are never hashed whole."""
        cfg = self.config
        return {
            "data": corpus_fingerprint(self.shards), "recipe": self.recipe.name,
            "terms": [asdict(t) for t in self.recipe.terms], "teacher": cfg.teacher,
            "student": {**self.student_info.to_dict(), "config": cfg.student_config},
            "masking": {"mlm_probability": cfg.mlm_probability, "smoothing": cfg.smoothing,
                        "whole_word": cfg.whole_word},
        }

    # ---- run -----------------------------------------------------------------------------
    def train(self) -> dict:
        evaluate = self.evaluate if self.eval_shards is not None else None
        self.loop = TrainLoop(
            self.module, self.examples, self.collate, self.loss_step, config=self.train_config,
            output_dir=self.output, evaluate=evaluate, main_metric="mlm_accuracy" if evaluate else None,
            on_best=self.save if evaluate else None, progress_desc="general-distill",
            accelerator=self.accelerator, lengths=self.shards.lengths, fingerprint=self.fingerprint(),
        )
        return self.loop.train()

    def run(self) -> dict:
        """setup → train → save the student → held-out masked-LM scores of teacher and student."""
        self.setup()
        if self.config.init_only:
            path = self.save()
            print(f"student saved as initialised (no distillation) to {path}")
            return {"student_dir": str(path), "student": self.student_info.to_dict()}
        summary = self.train()
        acc = self.accelerator
        tokens = self.collate.tokens
        if acc.num_processes > 1:
            tokens = int(acc.reduce(torch.tensor([tokens], device=acc.device), reduction="sum").item())
        if not acc.is_main_process:
            return summary
        results = {
            "teacher": self.config.teacher, "corpus": self.config.corpus, "recipe": self.recipe.name,
            "student": {**self.student_info.to_dict(), "class": type(self.student).__name__,
                        "parameters": sum(p.numel() for p in self.student.parameters())},
            "train": {k: v for k, v in summary.items() if k != "history"},
            "sequences": len(self.examples),
            "tokens_per_s": tokens / max(summary["train_seconds"], 1e-9),
            "peak_memory_mb": peak_memory_mb(acc.device),
            "config": asdict(self.config),
        }
        if self.eval_shards is not None:
            evals = [row for row in summary["history"] if row.get("eval")]
            best = next(row["eval"] for row in evals if row["step"] == summary["best_step"])
            teacher = evaluate_mlm(self.teacher, self.eval_shards, self.eval_collator,
                                   batch_size=self.config.eval_batch_size,
                                   max_sequences=self.config.max_eval_sequences, desc="teacher mlm eval")
            results["held_out"] = {"teacher": teacher, "student": best, "student_step": summary["best_step"],
                                   "student_final": evals[-1]["eval"]}
            print(f"held-out masked-LM ({self.config.eval_corpus}): teacher accuracy {teacher['mlm_accuracy']:.4f} "
                  f"loss {teacher['mlm_loss']:.4f}; student (step {summary['best_step']}) accuracy "
                  f"{best['mlm_accuracy']:.4f} loss {best['mlm_loss']:.4f}")
        else:
            self.save()
        results["student_dir"] = str(self.output / "student")
        (self.output / "results.json").write_text(json.dumps(results, indent=2, default=str))
        print(f"student saved to {self.output / 'student'}")
        return results
