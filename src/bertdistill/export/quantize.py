"""Dynamic int8 quantisation of an ONNX graph with ONNX Runtime.

Weights of MatMul / Attention nodes are stored as int8 with one scale per output channel;
activations are quantised on the fly per batch, so no calibration data is needed. Per-channel
scales matter: on the SST-2 MiniLM teacher per-tensor int8 lost 1.8 points of dev accuracy,
per-channel 0.1 (benchmarks/RESULTS.md, issue 9). This is ONNX Runtime's recommended
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


def quantize_int8(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Write the dynamic int8 version of the ONNX graph at ``fp32_path`` to ``out_path``."""
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
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    return Path(out_path)
