"""Deployment: ONNX export, int8 quantisation, parity checks, loading an export for inference."""

from .families import FAMILIES, Family, family_of, model_type
from .package import FORMATS, export_model
from .parity import Parity, ParityError
from .quantize import quantizer_available
from .runtime import OnnxModel, is_exported, load_for_inference, read_manifest

__all__ = [
    "FAMILIES", "FORMATS", "Family", "OnnxModel", "Parity", "ParityError", "export_model", "family_of",
    "is_exported", "load_for_inference", "model_type", "quantizer_available", "read_manifest",
]
