"""ONNX Runtime on CPU: runs everywhere, last in the default order."""

from __future__ import annotations

from .onnxruntime_session import OnnxRuntimePlugin

PLUGIN = OnnxRuntimePlugin("cpu", order=40)
