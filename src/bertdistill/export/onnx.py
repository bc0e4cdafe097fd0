"""PyTorch -> ONNX with dynamic batch and sequence axes, then ONNX Runtime's transformer fusions.

Two exporters are available in torch 2.13 and they give different graphs:

* ``torchscript`` (``torch.onnx.export(..., dynamo=False)``, the default here): traced from an
  eager-attention model, its graph is the pattern ONNX Runtime's transformer optimizer
  recognises, so attention, the embedding LayerNorm, skip-LayerNorms and GELU fuse into
  ``Attention``, ``EmbedLayerNormalization``, ``SkipLayerNormalization`` and ``BiasGelu``;
* ``dynamo`` (``torch.export`` + onnxscript): a cleaner graph, but in this version its
  attention sub-graph is not recognised and stays unfused (LayerNorm and GELU still fuse).

``fusion_counts`` returns what the optimizer fused, so the difference is measured, not assumed
(benchmarks/RESULTS.md, "SST-2: export and speed").
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .families import Family

EXPORTERS = ("torchscript", "dynamo")
DEFAULT_OPSET = 17
# fused operators worth reporting (the optimizer's statistics list many more, mostly zero)
FUSED_OPS = ("Attention", "MultiHeadAttention", "EmbedLayerNormalization", "SkipLayerNormalization",
             "LayerNormalization", "BiasGelu", "Gelu", "FastGelu", "QAttention", "DynamicQuantizeMatMul",
             "MatMulInteger")


class _LogitsOnly(torch.nn.Module):
    """Named tensor inputs in, logits out: the signature the exported graph gets."""

    def __init__(self, model: torch.nn.Module, inputs: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.inputs = inputs

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.inputs, tensors))).logits


class _SpanLogits(_LogitsOnly):
    """Named tensor inputs in, the start and end logits of extractive QA out."""

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(**dict(zip(self.inputs, tensors)))
        return out.start_logits, out.end_logits


#: the output names of a QA graph (both [batch, sequence])
SPAN_OUTPUTS = ("start_logits", "end_logits")


def _sample_inputs(model, inputs: tuple[str, ...], batch: int = 2, length: int = 8) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    vocab = int(model.config.vocab_size)
    values = {
        "input_ids": torch.randint(5, max(6, vocab), (batch, length), generator=gen),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "token_type_ids": torch.zeros(batch, length, dtype=torch.long),
    }
    values["attention_mask"][1, length // 2:] = 0  # one padded row, so masking is traced
    return tuple(values[name] for name in inputs)


def export_onnx(model: torch.nn.Module, family: Family, path: str | Path, *, opset: int = DEFAULT_OPSET,
                exporter: str = "torchscript", token_level: bool = False, spans: bool = False) -> Path:
    """Write ``model`` (a HF task model in eval mode) as ONNX with dynamic batch/sequence axes.

    Inputs are ``family.inputs`` (int64, shape [batch, sequence]); the output is ``logits``
    ([batch, labels], or [batch, sequence, labels] when ``token_level``), or for an extractive
    QA model (``spans``) ``start_logits`` and ``end_logits`` ([batch, sequence] each).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"--exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    path = Path(path)
    wrapper = (_SpanLogits if spans else _LogitsOnly)(model.eval(), family.inputs).eval()
    args = _sample_inputs(model, family.inputs)
    names = list(family.inputs)
    outputs = list(SPAN_OUTPUTS) if spans else ["logits"]
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python control flow on shapes
        if exporter == "torchscript":
            axes = {name: {0: "batch", 1: "sequence"} for name in names + outputs}
            if not (spans or token_level):
                axes["logits"] = {0: "batch"}
            torch.onnx.export(wrapper, args, str(path), dynamo=False, input_names=names, output_names=outputs,
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
        else:
            batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
            shapes = tuple({0: batch, 1: sequence} for _ in names)
            program = torch.onnx.export(wrapper, args, dynamo=True, input_names=names, output_names=outputs,
                                        dynamic_shapes=(shapes,), opset_version=opset)
            program.save(str(path), external_data=False)
    return path


def optimize_transformer(path: str | Path, out_path: str | Path, model, family: Family) -> dict[str, int]:
    """Run ONNX Runtime's transformer optimizer (fusions) from ``path`` to ``out_path``.

    Returns ``fusion_counts`` of the result. Families without an optimizer
    model type are copied unchanged (ONNX Runtime's generic graph optimisations still apply
    when a session loads them).
    """
    import shutil

    if family.ort_model_type is None:
        shutil.copyfile(path, out_path)
        return {}
    from onnxruntime.transformers import optimizer

    config = model.config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimized = optimizer.optimize_model(
            str(path), model_type=family.ort_model_type, num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size), opt_level=0, use_gpu=False,
        )
    optimized.save_model_to_file(str(out_path))
    return fusion_counts(out_path)


def fusion_counts(path: str | Path) -> dict[str, int]:
    """How many nodes of each fused operator type a saved ONNX graph holds."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    counts = {op: 0 for op in FUSED_OPS}
    for node in graph.node:
        if node.op_type in counts:
            counts[node.op_type] += 1
    return counts
