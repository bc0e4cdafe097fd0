"""`bertdistill mlm-head` and `bertdistill general-distill`: masked-LM teachers and general
(pre-training) distillation on a corpus prepared by `bertdistill corpus prepare`."""

from __future__ import annotations

import argparse

from .options import (add_cpu_training_args, add_model_args, cpu_training_overrides, json_option, model_options,
                      output_dir, term_weights)

TRAIN_FLAGS = {  # flag -> (type, TrainConfig field, help)
    "--epochs": (float, "epochs", "passes over the corpus (default: the recipe's)"),
    "--max-steps": (int, "max_steps", "stop after this many optimizer steps"),
    "--batch-size": (int, "batch_size", "sequences per batch and process"),
    "--grad-accum": (int, "grad_accum", "batches per optimizer step (effective batch = batch size x grad accum x processes)"),
    "--lr": (float, "lr", "peak learning rate of AdamW (default: the recipe's)"),
    "--weight-decay": (float, "weight_decay", "AdamW weight decay (default: the recipe's)"),
    "--warmup-ratio": (float, "warmup_ratio", "share of steps with linear warm-up (default: the recipe's)"),
    "--max-grad-norm": (float, "max_grad_norm", "gradient clipping norm, 0 = off (default: the recipe's)"),
    "--eval-every": (int, "eval_every", "optimizer steps between held-out evaluations (default: each epoch)"),
    "--save-every": (int, "save_every", "optimizer steps between checkpoints (default: at each evaluation)"),
    "--log-every": (int, "log_every", "optimizer steps between log.jsonl rows"),
    "--seed": (int, "seed", "seeds the student, the connectors and every mask (with epoch and sequence index)"),
}


def _training(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    for flag, (kind, _, help_text) in TRAIN_FLAGS.items():
        g.add_argument(flag, type=kind, default=None, help=help_text)
    g.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default=None,
                   help="autocast precision (default: the recipe's, else fp32)")
    add_cpu_training_args(g, defaults=False)
    g.add_argument("--no-length-grouping", action="store_true", help="random batches instead of length-grouped ones")
    g.add_argument("--no-resume", action="store_true", help="start over even if the output folder has a checkpoint")
    g.add_argument("--log-with", default=None,
                   help="accelerate trackers beside log.jsonl, e.g. tensorboard (under OUTPUT/trackers)")


def _train_overrides(a: argparse.Namespace) -> dict:
    out = {name: getattr(a, flag[2:].replace("-", "_")) for flag, (_, name, _) in TRAIN_FLAGS.items()}
    out["mixed_precision"] = a.mixed_precision
    out["log_with"] = a.log_with
    out.update(cpu_training_overrides(a))
    if a.no_length_grouping:
        out["group_by_length"] = False
    if a.no_resume:
        out["resume"] = False
    return {k: v for k, v in out.items() if v is not None}


def _masking(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("corpus and masking")
    g.add_argument("--corpus", required=True, help="folder written by `bertdistill corpus prepare` (train)")
    g.add_argument("--eval-corpus", default=None, help="a second prepared folder for held-out masked-LM accuracy/loss")
    g.add_argument("--mlm-probability", type=float, default=0.15, help="share of real tokens chosen per batch")
    g.add_argument("--smoothing", type=float, default=0.7, help="masking probability max(count, 1)^-smoothing")
    g.add_argument("--whole-word", action="store_true", help="mask every piece of a chosen word")
    g.add_argument("--max-eval-sequences", type=int, default=None, help="score N evenly spread sequences of --eval-corpus")
    g.add_argument("--eval-batch-size", type=int, default=16, help="sequences per held-out forward (default: 16)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mlm-head", help="turn an encoder into a masked-LM teacher by fitting its MLM head on a corpus")
    p.add_argument("--model", default="minilm-l6", help="BERT encoder: folder, hub id or alias (minilm-l6)")
    p.add_argument("--output", required=True, type=output_dir, help="run folder; the teacher is saved to OUTPUT/model")
    p.add_argument("--unfreeze-top-layers", type=int, default=0, help="also train the top K encoder layers")
    _masking(p)
    _training(p)
    add_model_args(p)
    p.set_defaults(handler=_mlm_head)

    p = sub.add_parser("general-distill", help="general (pre-training) distillation of a teacher on a corpus")
    p.add_argument("--teacher", required=True,
                   help="folder, hub id or alias; a masked-LM for recipes comparing logits (see `bertdistill mlm-head`), "
                        "any encoder for general_minilm, a sentence-transformers folder for general_embedding")
    p.add_argument("--output", required=True, type=output_dir, help="run folder; the student is saved to OUTPUT/student")
    p.add_argument("--recipe", default="general_distilbert",
                   help="general_distilbert, general_tinybert, general_minilm, general_embedding, "
                        "general_mobilebert (one stage per student layer) or a YAML path")
    p.add_argument("--tokenizer", default=None, help="default: the teacher's")
    p.add_argument("--student-arch", choices=["same", "distilbert"], default=None,
                   help="DistilBertForMaskedLM (default) or the teacher's own class")
    p.add_argument("--student-layers", default=None,
                   help="teacher layers to copy: a preset (skip = every other keeping the last), a count, or 0-based 1,3,5")
    p.add_argument("--student-config", default=None,
                   help='random narrower student: JSON or a .json path, e.g. \'{"hidden_size": 192, "num_hidden_layers": 3}\'')
    p.add_argument("--temperature", type=float, default=None, help="KL temperature (default: the recipe's, T=2)")
    p.add_argument("--weight", action="append", default=[], metavar="TERM=W", help="override a term's weight")
    p.add_argument("--init-only", action="store_true",
                   help="save the student as built (teacher layers or random) without distilling, for baselines")
    p.add_argument("--vocab-chunk", type=int, default=None, metavar="N",
                   help="compute the masked-LM terms N real tokens at a time (less memory, same values; "
                        "default 512, 0 = all positions at once)")
    _masking(p)
    _training(p)
    add_model_args(p)
    p.set_defaults(handler=_general_distill)


def _mlm_head(a: argparse.Namespace) -> dict:
    from ..api import mlm_head

    return mlm_head(
        a.model, a.corpus, a.output, eval_corpus=a.eval_corpus,
        unfreeze_top_layers=a.unfreeze_top_layers, mlm_probability=a.mlm_probability, smoothing=a.smoothing,
        whole_word=a.whole_word, max_eval_sequences=a.max_eval_sequences, eval_batch_size=a.eval_batch_size,
        train=_train_overrides(a), **model_options(a),
    )


def _general_distill(a: argparse.Namespace) -> dict:
    from ..api import general_distill

    return general_distill(
        a.teacher, a.corpus, a.output, recipe=a.recipe, eval_corpus=a.eval_corpus,
        tokenizer=a.tokenizer, student_arch=a.student_arch, student_layers=a.student_layers,
        student_config=json_option("--student-config", a.student_config), temperature=a.temperature,
        weights=term_weights(a.weight),
        mlm_probability=a.mlm_probability, smoothing=a.smoothing, whole_word=a.whole_word,
        max_eval_sequences=a.max_eval_sequences, eval_batch_size=a.eval_batch_size, init_only=a.init_only,
        train=_train_overrides(a), **({} if a.vocab_chunk is None else {"vocab_chunk": a.vocab_chunk}),
        **model_options(a),
    )
