"""Dynamic int8 quantisation of an ONNX graph with ONNX Runtime.

What is quantised (the operator types are recorded in the export folder's ``export.json``):

* the weights of the MatMul and (fused) Attention nodes of the transformer layers: int8 with
  one scale per output channel; their activations are quantised on the fly per batch, so no
  calibration data is needed;
* by default also the embeddings: the word, position and token-type tables and the
  embedding LayerNorm's weight and bias, as inputs of the fused EmbedLayerNormalization node
  (or of plain Gather nodes), stored as 8-bit integers with ONE scale per tensor.
  ``int8_embeddings=False`` (``--fp32-embeddings``) keeps them in fp32.

Left in fp32 either way: the classifier head (Gemm), the other LayerNorms, biases, GELU.
Per-channel scales matter: on the SST-2 MiniLM teacher per-tensor int8 lost 1.8 points of
dev accuracy, per-channel 0.1 (benchmarks/RESULTS.md). This is ONNX Runtime's recommended
path for transformer encoders on CPU.

PyTorch's own dynamic quantisation (``torch.ao.quantization.quantize_dynamic``) is not offered:
in torch 2.13 it is deprecated (it warns and points to torchao), so it is no baseline to build on.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path


def quantizer_available() -> bool:
    """Whether this ONNX Runtime ships ``onnxruntime.quantization`` (minimal builds do not)."""
    try:
        module = importlib.import_module("onnxruntime.quantization")
    except ImportError:
        return False
    return hasattr(module, "quantize_dynamic")


def require_quantizer(option: str = "--format onnx-int8") -> None:
    """ValueError naming ``option`` when the installed ONNX Runtime cannot quantise."""
    if not quantizer_available():
        try:
            import onnxruntime

            version = onnxruntime.__version__
        except ImportError:
            version = "not installed"
        raise ValueError(
            f"{option} needs onnxruntime.quantization, which this ONNX Runtime ({version}) does not "
            "provide; install the full package: pip install onnxruntime"
        )


#: operator types whose weights hold the embedding tables (and the embedding LayerNorm)
EMBEDDING_OPS = ("EmbedLayerNormalization", "Gather")


def quantized_op_types(int8_embeddings: bool = True) -> list[str]:
    """The operator types the dynamic quantiser is given: all it supports (ONNX Runtime's
    default: MatMul, Attention, EmbedLayerNormalization, Gather, ...), less the embedding
    operators when ``int8_embeddings`` is False."""
    require_quantizer()
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    return sorted(op for op in IntegerOpsRegistry if int8_embeddings or op not in EMBEDDING_OPS)


def quantize_int8(fp32_path: str | Path, out_path: str | Path, *, int8_embeddings: bool = True) -> Path:
    """Write the dynamic int8 version of the ONNX graph at ``fp32_path`` to ``out_path``
    (``int8_embeddings=False``: the embeddings stay fp32, see the module docstring)."""
    require_quantizer()
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a generic pre-processing hint on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference:
            # their outputs are float, which the quantiser is told instead of failing to find a type
            quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=quantized_op_types(int8_embeddings),
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    return Path(out_path)
