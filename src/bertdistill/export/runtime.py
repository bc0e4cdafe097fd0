"""Loading a model for inference: an exported ONNX folder or a saved PyTorch folder, one call.

``load_for_inference(dir)`` is what ``bertdistill evaluate`` (and ``predict``) use, so an
exported folder is accepted wherever a saved model is. The ONNX model is wrapped in
``OnnxModel``, a ``torch.nn.Module`` without parameters whose ``forward`` takes the usual
tensors and returns an object with ``.logits``, like a Hugging Face model.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..data.errors import DataError
from ..data.examples import TaskSpec
from ..models.loading import LABELS_FILE, load_labels, resolve_model, task_from_labels
from ..models.task_fit import check_task_fit

MANIFEST = "export.json"
ONNX_FILE = "model.onnx"


def is_exported(model_dir: str | os.PathLike) -> bool:
    """Whether ``model_dir`` is a folder written by ``bertdistill export``."""
    path = Path(str(model_dir)).expanduser()
    return path.is_dir() and (path / MANIFEST).is_file() and (path / ONNX_FILE).is_file()


def read_manifest(model_dir: str | os.PathLike) -> dict:
    """The ``export.json`` of an exported folder (format, opset, exporter, fusions, parity...)."""
    path = Path(str(model_dir)) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{model_dir} is not an exported model folder: {path} not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def ort_providers(device: str = "cpu") -> list[str]:
    """ONNX Runtime execution providers for ``device`` ("cpu" or "cuda")."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ValueError("device cuda: this ONNX Runtime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxModel(torch.nn.Module):
    """An ONNX Runtime session behind the call signature of a Hugging Face task model."""

    def __init__(self, onnx_path: str | os.PathLike, *, threads: int | None = None, device: str = "cpu",
                 config=None, spinning: bool = True):
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spinning:  # idle ORT threads sleep instead of busy-waiting (see bench.runner)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.path = Path(onnx_path)
        providers = ort_providers(device)
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as err:  # onnxruntime's InvalidProtobuf / Fail / NoSuchFile for a damaged file
            raise DataError(self.path, None, onnx_load_error(err)) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # an extractive QA graph answers with start and end logits (export.onnx.SPAN_OUTPUTS)
        self.spans = {"start_logits", "end_logits"} <= set(self.output_names)
        self.config = config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> SimpleNamespace:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if given["attention_mask"] is None:
            given["attention_mask"] = torch.ones_like(input_ids)
        if given["token_type_ids"] is None:
            given["token_type_ids"] = torch.zeros_like(input_ids)
        feeds = {name: given[name].detach().cpu().numpy().astype(np.int64, copy=False) for name in self.input_names}
        if self.spans:
            start, end = self.session.run(["start_logits", "end_logits"], feeds)
            return SimpleNamespace(start_logits=torch.from_numpy(start), end_logits=torch.from_numpy(end))
        logits = self.session.run(["logits"], feeds)[0]
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def run_numpy(self, feeds: dict[str, np.ndarray]):
        """The outputs for already-prepared int64 arrays keyed by input name (no tensor conversion):
        the logits, or (start logits, end logits) of a QA graph."""
        if self.spans:
            return tuple(self.session.run(["start_logits", "end_logits"], feeds))
        return self.session.run(["logits"], feeds)[0]


def onnx_load_error(err: Exception) -> str:
    """ONNX Runtime's reason for refusing a model file, as one short line with the way out."""
    reason = " ".join(str(err).split())
    reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", reason)[:200]
    return (f"ONNX Runtime cannot load this model ({reason}): the file is truncated or damaged; "
            "export the model again (bertdistill export)")


def load_for_inference(model_dir: str | os.PathLike, task: TaskSpec | None = None, *, threads: int | None = None,
                       device: str = "cpu"):
    """A callable model for ``model_dir``: ``OnnxModel`` for an exported folder, else the PyTorch model.

    ``task`` (default: the folder's labels.json) gives the head; an exported folder's number of
    labels must match it (ValueError naming both). A PyTorch folder must hold a trained task
    head (``load_task_model(..., trained_head=True)``); a damaged ``model.onnx`` is named.
    """
    if is_exported(model_dir):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(model_dir))
        if task is not None and task.kind not in ("regression", "qa") and int(config.num_labels) != task.num_labels:
            raise ValueError(
                f"{model_dir}: the exported model has {config.num_labels} labels but task {task.name!r} "
                f"has {task.num_labels}"
            )
        if task is not None and (Path(str(model_dir)) / LABELS_FILE).is_file():  # the labels.json export copies
            check_task_fit(model_dir, task, saved=load_labels(model_dir))
        return OnnxModel(Path(str(model_dir)) / ONNX_FILE, threads=threads, device=device, config=config)
    from ..models.loading import load_task_model

    source = resolve_model(model_dir)
    model = load_task_model(source, task if task is not None else task_from_labels(source), trained_head=True)
    return model.eval()
