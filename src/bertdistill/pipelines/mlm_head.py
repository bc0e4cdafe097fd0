"""Recipe: turn an encoder into a masked-LM teacher by fitting its MLM head on a corpus.

Offline there is no masked-LM teacher: the packaged MiniLM-L6 is a sentence encoder without
an MLM head. This recipe loads it as a ``BertForMaskedLM`` with a new head (transform dense +
LayerNorm, decoder tied to the word embeddings, output bias), freezes the encoder (the top
``unfreeze_top_layers`` layers may train too) and fits the head with the masked-LM
cross-entropy on prepared shards. The result is a plain ``BertForMaskedLM`` folder (with the
tokenizer) that ``AutoModelForMaskedLM.from_pretrained`` loads and ``bertdistill
general-distill --teacher`` accepts. Held-out masked-token accuracy and loss are reported on
``eval_corpus``.

Steps, torchtune style: ``setup`` / ``loss_step`` / ``evaluate`` / ``train`` / ``save`` / ``run``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate.utils import set_seed

from ..corpus import IGNORE
from ..models.loading import (hub_errors, load_tokenizer, pretrained_kwargs, quiet_transformers, resolve_model,
                              save_model)
from ..models.mlm import encoder_with_new_mlm_head, freeze_for_head_fitting
from ..training.engine import TrainConfig, TrainLoop, make_accelerator
from ..training.validate import check_output
from .runfolder import claim_output
from .mlm_batches import (check_vocabulary, corpus_fingerprint, evaluate_mlm, masked_batches, masked_logits,
                          open_corpora)


@dataclass
class MlmHeadConfig:
    model: str
    corpus: str
    output: str
    eval_corpus: str | None = None
    unfreeze_top_layers: int = 0
    mlm_probability: float = 0.15
    smoothing: float = 0.7
    whole_word: bool = False
    max_eval_sequences: int | None = None
    eval_batch_size: int = 16
    eval_seed: int = 1234
    train: dict = field(default_factory=dict)  # TrainConfig fields


def head_train_config(overrides: dict) -> TrainConfig:
    """Defaults for fitting a head: one epoch, a higher learning rate than fine-tuning."""
    base = {"epochs": 1.0, "lr": 1e-3, "batch_size": 32, "warmup_ratio": 0.05, "weight_decay": 0.0}
    return TrainConfig(**{**base, **{k: v for k, v in overrides.items() if v is not None}})


class MaskedPositionsLoss(torch.nn.Module):
    """What the engine trains: the masked-LM model, with the vocabulary projection computed at
    the masked positions only (a forward through this module keeps DDP's gradient hooks)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        picked = batch["labels"] != IGNORE
        logits = masked_logits(self.model, batch, picked)
        return F.cross_entropy(logits.float(), batch["labels"][picked])


class MlmHeadRecipe:
    def __init__(self, config: MlmHeadConfig):
        self.config = config
        self.output = Path(config.output)

    # ---- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        from transformers import AutoConfig

        cfg = self.config
        check_output(cfg.output)  # an existing file is refused before anything is read
        self.train_config = head_train_config(cfg.train)
        with quiet_transformers(), hub_errors(cfg.model):
            model_config = AutoConfig.from_pretrained(resolve_model(cfg.model), **pretrained_kwargs())
        self.tokenizer = load_tokenizer(cfg.model)
        check_vocabulary(self.tokenizer, model_config, model_flag=f"--model {cfg.model}",
                         tokenizer_name=f"of {cfg.model}")
        # cheap checks first: the shards (memory-mapped) before any weights are loaded
        self.shards, self.eval_shards = open_corpora(cfg, self.tokenizer)
        layers = getattr(model_config, "num_hidden_layers", 0)
        if not 0 <= cfg.unfreeze_top_layers <= layers:
            raise ValueError(f"--unfreeze-top-layers must be between 0 and {layers}, got {cfg.unfreeze_top_layers}")
        self.run_lock = claim_output(  # --output locked, a clash with its checkpoint's run refused
            self.output, self.train_config, model=cfg.model, unfreeze_top_layers=cfg.unfreeze_top_layers,
            masking=[cfg.mlm_probability, cfg.smoothing, cfg.whole_word])
        set_seed(self.train_config.seed)  # the new head's initial weights
        self.model = encoder_with_new_mlm_head(cfg.model)
        self.trainable = freeze_for_head_fitting(self.model, cfg.unfreeze_top_layers)
        self.examples, self.collate, self.eval_collator = masked_batches(
            cfg, self.tokenizer, self.shards, self.eval_shards, seed=self.train_config.seed,
            epoch=lambda: self.loop.state.epoch)
        self.accelerator = make_accelerator(self.train_config)

    # ---- steps ---------------------------------------------------------------------------
    def loss_step(self, module: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
        """Cross-entropy at the masked positions (see :class:`MaskedPositionsLoss`)."""
        loss = module(batch)
        return loss, {"mlm_ce": float(loss.detach())}

    def evaluate(self) -> dict:
        return evaluate_mlm(self.model, self.eval_shards, self.eval_collator,
                            batch_size=self.config.eval_batch_size, max_sequences=self.config.max_eval_sequences)

    def train(self) -> dict:
        self.loop = TrainLoop(
            MaskedPositionsLoss(self.model), self.examples, self.collate, self.loss_step, config=self.train_config,
            output_dir=self.output, progress_desc="mlm-head", accelerator=self.accelerator,
            lengths=self.shards.lengths,
            fingerprint={"data": corpus_fingerprint(self.shards), "model": self.config.model,
                         "unfreeze_top_layers": self.config.unfreeze_top_layers,
                         "masking": [self.config.mlm_probability, self.config.smoothing, self.config.whole_word]},
        )
        return self.loop.train()

    def save(self, metrics: dict | None) -> Path:
        return save_model(self.model, self.tokenizer, self.output / "model",
                          metrics=metrics)

    def run(self) -> dict:
        self.setup()
        summary = self.train()
        if not self.accelerator.is_main_process:
            return summary
        metrics = self.evaluate() if self.eval_shards is not None else None
        path = self.save({"held_out": metrics} if metrics else None)
        results = {
            "model_dir": str(path), "base_model": self.config.model,
            "trainable_parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            "held_out": metrics, "train": {k: v for k, v in summary.items() if k != "history"},
            "tokens_per_s": self.collate.tokens * self.accelerator.num_processes / max(summary["train_seconds"], 1e-9),
            "config": asdict(self.config),
        }
        (self.output / "results.json").write_text(json.dumps(results, indent=2, default=str))
        if metrics:
            print(f"held-out masked-LM ({self.config.eval_corpus}): accuracy {metrics['mlm_accuracy']:.4f}, "
                  f"loss {metrics['mlm_loss']:.4f} over {metrics['masked_tokens']} masked tokens")
        print(f"masked-LM teacher saved to {path}")
        return results
