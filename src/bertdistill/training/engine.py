"""The training loop shared by fine-tuning and distillation.

``TrainLoop`` owns what every recipe needs and nothing task-specific: accelerate
(mixed precision, multi-process data parallel), AdamW with warm-up and linear decay,
gradient clipping and accumulation, length-grouped dynamic batches, periodic evaluation
with the best result kept, atomic checkpoints with exact resume, a NaN/inf guard, a
progress bar and a JSONL log. A recipe hands it a module to train and a ``loss_step``.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast_object_list, gather_object, set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from ..bench.machine import cpu_has_bf16
from ..data.encode import length_grouped_batches
from .allocator import keep_freed_memory
from .clipping import clip_gradients
from .dropout import training_dropout
from .checkpoint import (
    TrainState, forget_checkpoints, latest_checkpoint, load_checkpoint, read_fingerprint, rng_state,
    save_checkpoint, write_text_atomic,
)
from ..durable import DiskWriteError
from .loss_window import LossWindow
from .fingerprint import check_resume, run_fingerprint
from .validate import check_train_config
from .trackers import hparams, parse_trackers, tracker_values

log = logging.getLogger(__name__)

LossStep = Callable[[torch.nn.Module, dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    eval_every: int | None = None      # optimizer steps; None = after each epoch
    save_every: int | None = None      # optimizer steps; None = at each evaluation
    seed: int = 42
    mixed_precision: str = "no"        # "no" | "bf16" | "fp16"
    group_by_length: bool = True
    log_every: int = 10
    resume: bool = True
    log_with: str | None = None        # accelerate trackers beside the JSONL log, e.g. "tensorboard"
    optimizer: str = "fused"           # AdamW kernels: fused | foreach | loop (same maths; see OPTIMIZERS)
    dropout_draws: str = "torch"       # CPU dropout masks: torch | fast (16-bit draws, training/dropout.py)
    cpu_allocator: str = "keep"        # CPU malloc: keep freed pages | system (training/allocator.py)
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_train_config(self)  # ValueError naming the CLI flag, before any work
        parse_trackers(self.log_with)  # unknown or uninstalled tracker: error before any work

    @classmethod
    def merged(cls, *layers: dict | None) -> "TrainConfig":
        """A TrainConfig from dicts applied in order (e.g. a recipe's ``training:`` block, then
        the user's options): later ones win, ``None`` values and unknown keys are skipped."""
        names = {f.name for f in fields(cls)}
        merged: dict = {}
        for layer in layers:
            merged.update({k: v for k, v in (layer or {}).items() if k in names and v is not None})
        return cls(**merged)


def make_accelerator(config: TrainConfig) -> Accelerator:
    """One Accelerator per run: device placement, mixed precision, process group (torchrun).

    accelerate keeps its settings in a process-wide singleton; a second run in the same
    Python process (the demo, the API in a notebook) may ask for another precision, so the
    per-run part is cleared. The process group (PartialState) is kept.
    """
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", config.mixed_precision) != config.mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    trackers = parse_trackers(config.log_with)  # their folder is set per run by TrainLoop
    if not torch.cuda.is_available():
        keep_freed_memory(config.cpu_allocator)  # CPU training: reuse freed pages instead of mmap/munmap per step
        if config.mixed_precision == "bf16" and not cpu_has_bf16():
            log.warning(EMULATED_BF16)
    return Accelerator(mixed_precision=config.mixed_precision, cpu=not torch.cuda.is_available(),
                       log_with=trackers or None, project_dir="trackers" if trackers else None)


def close_process_group() -> None:
    """At exit after a finished training run under several processes: wait until every rank is
    done (the main process evaluates and writes results after the others have finished), then
    close the process group. A rank that exits while the group's threads still talk to the
    others is aborted by the C++ runtime. Registered only once training has ended, so a rank that
    fails during training still exits at once (torchrun then stops the others)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


#: said before any work when bf16 is asked for on a CPU whose bf16 products are emulated
EMULATED_BF16 = (
    "--mixed-precision bf16: this CPU has neither AVX-512 BF16 nor AMX, so PyTorch emulates bf16 "
    "products with fp32 instructions and conversions; on such CPUs bf16 runs slower than fp32 "
    "(an SST-2 distillation step took 365 ms in bf16 against 156 ms in fp32 on an Intel Xeon without "
    "them). Leave it at --mixed-precision no here."
)


#: AdamW implementations (one update rule): ``fused`` = one kernel per tensor (torch's fused
#: AdamW: the update reads and writes each tensor once), ``foreach`` = a few multi-tensor
#: kernels, ``loop`` = torch's per-tensor loop of element-wise ops (its CPU default). Profiled
#: on the SST-2 distillation step (2 CPU cores), the loop spent 56 of 148 ms in the update.
OPTIMIZERS = ("fused", "foreach", "loop")


def make_optimizer(module: torch.nn.Module, config: "TrainConfig") -> torch.optim.AdamW:
    """AdamW over ``module``'s trainable parameters (no decay on biases and layer norms)."""
    kernels = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[config.optimizer]
    return torch.optim.AdamW(param_groups(module, config.weight_decay, config.lr), lr=config.lr, **kernels)


#: a parameter carrying this attribute (a float) is trained at ``lr ×`` that factor (its own
#: param group, scheduled like the others): the lower layers of a progressive stage
LR_SCALE_ATTR = "bertdistill_lr_scale"


def param_groups(module: torch.nn.Module, weight_decay: float, lr: float | None = None) -> list[dict]:
    decay, no_decay = [], []
    scaled: dict[tuple[float, bool], list] = {}
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        plain = param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        scale = getattr(param, LR_SCALE_ATTR, None)
        if scale is not None and lr is not None:
            scaled.setdefault((float(scale), plain), []).append(param)
            continue
        (no_decay if plain else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ] + [{"params": params, "weight_decay": 0.0 if plain else weight_decay, "lr": lr * scale}
         for (scale, plain), params in scaled.items()]


class TrainLoop:
    """Train ``module`` with ``loss_step`` over ``features`` (a list of encoded examples).

    ``fingerprint``: the recipe's fields of the run's identity (training/fingerprint.py), stored
    in each checkpoint and compared on resume; a ``"data"`` entry replaces the hash of the
    features' token ids (for corpora too large to hash).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        features: list[dict],
        collate: Callable[[list[dict]], dict],
        loss_step: LossStep,
        *,
        config: TrainConfig,
        output_dir: str | Path,
        evaluate: Callable[[], dict] | None = None,
        main_metric: str | None = None,
        on_best: Callable[[dict], None] | None = None,
        accelerator: Accelerator | None = None,
        progress_desc: str = "train",
        lengths: Sequence[int] | None = None,
        fingerprint: dict | None = None,
    ):
        if not len(features):
            raise ValueError("the training split is empty")
        self.config = config
        self.grad_norm: float | None = None  # of the last optimizer step, before clipping (logged)
        self.features = features
        self.collate = collate
        self.loss_step = loss_step
        self.evaluate_fn = evaluate
        self.main_metric = main_metric
        self.on_best = on_best
        self.output_dir = Path(output_dir)
        self.ckpt_dir = self.output_dir / "checkpoints"
        self.progress_desc = progress_desc
        self.accelerator = accelerator or make_accelerator(config)
        # ``lengths`` given: ``features`` may be a lazy sequence (memory-mapped shards) that
        # is read only batch by batch, never iterated as a whole.
        self.lengths = lengths if lengths is not None else [len(f["input_ids"]) for f in features]
        if len(self.lengths) != len(features):
            raise ValueError(f"lengths has {len(self.lengths)} entries for {len(features)} features")
        set_seed(config.seed)
        self.raw_module = module
        self.optimizer = make_optimizer(module, config)
        self.total_steps = self._total_steps()
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(config.warmup_ratio * self.total_steps), self.total_steps
        )
        self.module, self.optimizer = self.accelerator.prepare(module, self.optimizer)
        self.state = TrainState()
        self.window = LossWindow()  # the loss sums of the log row being gathered
        self.history: list[dict] = []
        self._bar = None  # the progress bar while train() runs
        self.fingerprint = self._run_fingerprint(fingerprint or {})
        if config.log_with:
            self.accelerator.project_configuration.logging_dir = str(self.output_dir / "trackers")
            self.accelerator.init_trackers(self.output_dir.name or "bertdistill", config=hparams(asdict(config)))

    # ---- data -------------------------------------------------------------------------
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        cfg = self.config
        if cfg.group_by_length:
            batches = length_grouped_batches(self.lengths, cfg.batch_size, shuffle=True, seed=cfg.seed + epoch)
        else:
            gen = torch.Generator().manual_seed(cfg.seed + epoch)
            order = torch.randperm(len(self.lengths), generator=gen).tolist()
            batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        per_process = len(batches) // world if world > 1 else len(batches)
        return batches[rank::world][:per_process]

    def _steps_per_epoch(self) -> int:
        n_batches = math.ceil(len(self.lengths) / self.config.batch_size)
        n_batches = n_batches // self.accelerator.num_processes if self.accelerator.num_processes > 1 else n_batches
        return max(1, math.ceil(n_batches / self.config.grad_accum))

    def _total_steps(self) -> int:
        if self.config.max_steps:
            return self.config.max_steps
        return max(1, int(math.ceil(self.config.epochs * self._steps_per_epoch())))

    def _to_device(self, batch: dict) -> dict:
        device = self.accelerator.device
        return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}

    # ---- checkpoints ------------------------------------------------------------------
    def _run_fingerprint(self, extra: dict) -> dict:
        """What determines this run (see training/fingerprint.py); recipes add their own fields."""
        return run_fingerprint(self.config, self.accelerator.num_processes, self.features, extra)

    def _save(self) -> None:
        # collectives first, on every process: each rank's RNG state, the log window's sums
        rng_states = gather_object([rng_state()])
        self.state.window = self.window.merge(self.accelerator)
        self._on_main_process(lambda: save_checkpoint(
            self.ckpt_dir,
            model=self.accelerator.unwrap_model(self.module),
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            state=self.state,
            scaler=self.accelerator.scaler,
            fingerprint=self.fingerprint,
            rng_states=rng_states,
        ))

    def _on_main_process(self, write: Callable[[], Any]) -> None:
        """Run ``write`` on the main process while the others wait. A write error there
        (``OSError``: a full disk) ends every process with its message, none waits forever."""
        error = None
        if self.accelerator.is_main_process:
            try:
                write()
            except OSError as err:
                error = err
        message = broadcast_object_list([" ".join(str(error).split()) if error is not None else None])[0]
        if error is not None:
            raise error
        if message is not None:
            raise DiskWriteError(f"the main process stopped: {message}")

    def _start_afresh(self) -> None:
        """--no-resume: old checkpoints become unresumable and the log starts empty (old one kept aside)."""
        log_path = self.output_dir / "log.jsonl"
        if self.accelerator.is_main_process:
            previous = forget_checkpoints(self.ckpt_dir)
            if previous is not None:
                self.accelerator.print(f"--no-resume: not resuming from {previous}; the old checkpoints are "
                                       "deleted when this run writes its first one")
            if log_path.exists():
                log_path.replace(self.output_dir / "log.previous.jsonl")
                self.accelerator.print(f"--no-resume: starting a fresh {log_path} (the old log is now log.previous.jsonl)")
        self.accelerator.wait_for_everyone()

    def _maybe_resume(self) -> None:
        if not self.config.resume:
            self._start_afresh()
            return
        path = latest_checkpoint(self.ckpt_dir)
        if path is not None:
            check_resume(read_fingerprint(path), self.fingerprint, str(path))
            self.state = load_checkpoint(
                path, model=self.accelerator.unwrap_model(self.module), optimizer=self.optimizer,
                scheduler=self.scheduler, scaler=self.accelerator.scaler,
                rank=self.accelerator.process_index, world_size=self.accelerator.num_processes,
            )
        self.window = LossWindow.restored(self.state.window)
        log_path = self.output_dir / "log.jsonl"
        if log_path.exists():  # rows written after the checkpoint (or before any) are redone: drop them
            self.history = [
                row for row in map(json.loads, log_path.read_text().splitlines()) if row.get("step", 0) <= self.state.step
            ]
            if self.accelerator.is_main_process:
                write_text_atomic(log_path, "".join(json.dumps(r) + "\n" for r in self.history))
        if path is not None:
            self.accelerator.print(f"resumed from {path} (step {self.state.step}, epoch {self.state.epoch})")

    # ---- logging / evaluation -----------------------------------------------------------
    def _log(self, row: dict) -> None:
        self.history.append(row)
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / "log.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
        if self.config.log_with:
            self.accelerator.log(tracker_values(row), step=row["step"])

    def _evaluate(self) -> dict | None:
        if self.evaluate_fn is None:
            return None
        self.accelerator.wait_for_everyone()
        metrics = None
        if self.accelerator.is_main_process:
            metrics = self.evaluate_fn()
        metrics = broadcast_object_list([metrics])[0]
        self.module.train()
        self.state.eval_step = self.state.step
        self._log({"step": self.state.step, "epoch": self.state.epoch, "eval": metrics})
        if self.main_metric and metrics is not None:
            value = float(metrics[self.main_metric])
            if self.state.best_metric is None or value > self.state.best_metric:
                self.state.best_metric, self.state.best_step = value, self.state.step
                if self.on_best is not None:
                    self._on_main_process(lambda: self.on_best(metrics))
        return metrics

    # ---- the loop -----------------------------------------------------------------------
    def train(self) -> dict:
        """Run to the end (resuming if a checkpoint exists); returns a summary dict."""
        with training_dropout(self.module, self.accelerator.device, self.config.dropout_draws):
            try:
                return self._train()
            finally:  # an error ends the bar's line first, so the error's own line comes last
                if self._bar is not None:
                    self._bar.close()

    def _train(self) -> dict:
        cfg, acc = self.config, self.accelerator
        self._maybe_resume()
        self.module.train()
        bar = self._bar = tqdm(
            total=self.total_steps, initial=self.state.step, desc=self.progress_desc,
            disable=not acc.is_local_main_process, dynamic_ncols=True,
        )
        started, samples = time.perf_counter(), 0
        epoch = self.state.epoch
        while self.state.step < self.total_steps:
            batches = self._epoch_batches(epoch)
            groups = [batches[i : i + cfg.grad_accum] for i in range(0, len(batches), cfg.grad_accum)]
            start_group = self.state.batch_in_epoch // cfg.grad_accum
            for g_index in range(start_group, len(groups)):
                if self.state.step >= self.total_steps:
                    break
                loss_value, parts, n = self._optimizer_step(groups[g_index])
                samples += n * acc.num_processes
                self.state.step += 1
                self.state.epoch = epoch
                self.state.batch_in_epoch = (g_index + 1) * cfg.grad_accum
                self.window.add(loss_value, parts)
                rate = samples / max(time.perf_counter() - started, 1e-9)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", samples_s=f"{rate:.1f}")
                if self.state.step % cfg.log_every == 0 or self.state.step == self.total_steps:
                    mean_loss, mean_parts = self.window.row(acc)  # over the window and the processes
                    self._log({
                        "step": self.state.step, "epoch": epoch, "loss": mean_loss,
                        "parts": mean_parts, "lr": self.scheduler.get_last_lr()[0], "samples_per_s": rate,
                        **({"grad_norm": self.grad_norm} if self.grad_norm is not None else {}),
                    })
                if cfg.eval_every and self.state.step % cfg.eval_every == 0:
                    self._evaluate()
                    if not cfg.save_every:
                        self._save()
                if cfg.save_every and self.state.step % cfg.save_every == 0:
                    self._save()
            else:
                epoch += 1
                self.state.epoch, self.state.batch_in_epoch = epoch, 0
                if not cfg.eval_every and self.state.step < self.total_steps:
                    self._evaluate()
                    self._save()
                continue
            break
        bar.close()
        if self.state.eval_step != self.state.step:
            self._evaluate()
        self._save()
        if cfg.log_with:
            acc.end_training()
        if acc.num_processes > 1:
            atexit.register(close_process_group)
        elapsed = time.perf_counter() - started
        return {
            "steps": self.state.step,
            "best_metric": self.state.best_metric,
            "best_step": self.state.best_step,
            "train_seconds": elapsed,
            "samples_per_s": samples / max(elapsed, 1e-9),
            "processes": self.accelerator.num_processes,
            "mixed_precision": self.config.mixed_precision,
            "history": self.history,
        }

    def _optimizer_step(self, group: list[list[int]]) -> tuple[float, dict, int]:
        acc, cfg = self.accelerator, self.config
        total, parts_sum, n = 0.0, {}, 0
        for i, indices in enumerate(group):
            batch = self._to_device(self.collate([self.features[j] for j in indices]))
            sync = i == len(group) - 1
            ctx = acc.no_sync(self.module) if not sync and acc.num_processes > 1 else _null()
            with ctx:
                with acc.autocast():
                    loss, parts = self.loss_step(self.module, batch)
                self._check_finite(loss)
                acc.backward(loss / len(group))
            total += float(loss.detach()) / len(group)
            for key, value in parts.items():
                parts_sum[key] = parts_sum.get(key, 0.0) + float(value) / len(group)
            n += len(indices)
        if cfg.max_grad_norm and cfg.max_grad_norm > 0:
            self.grad_norm = clip_gradients(acc, self.module.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, parts_sum, n

    def _check_finite(self, loss: torch.Tensor) -> None:
        bad = torch.tensor([0.0 if torch.isfinite(loss.detach()).all() else 1.0], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        if bad.item() > 0:
            good = latest_checkpoint(self.ckpt_dir)
            where = f"the last good checkpoint is {good}" if good else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"loss became {float(loss.detach())} at optimizer step {self.state.step + 1} "
                f"(epoch {self.state.epoch}); training stopped, {where}. "
                "Lower the learning rate, or use fp32 / bf16 instead of fp16."
            )


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)
