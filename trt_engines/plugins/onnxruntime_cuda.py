"""ONNX Runtime with the CUDA provider (onnxruntime-gpu): any ONNX on an NVIDIA GPU, no engine build."""

from __future__ import annotations

from .onnxruntime_session import OnnxRuntimePlugin

PLUGIN = OnnxRuntimePlugin("cuda", order=20)
