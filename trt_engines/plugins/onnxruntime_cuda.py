"""ONNX Runtime with the CUDA provider (onnxruntime-gpu): any ONNX on an NVIDIA GPU, no engine build."""

from __future__ import annotations

from ..base import Backend, BackendRequest
from .onnxruntime_session import OnnxRuntimeBackend, OnnxRuntimeSettings


class OnnxRuntimeCuda:
    name = "onnxruntime-cuda"
    precisions = ("fp32", "int8")  # int8: the QDQ ONNX calibration writes
    order = 20
    settings = OnnxRuntimeSettings

    def describe(self) -> tuple[bool, str]:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        return "CUDAExecutionProvider" in providers, f"onnxruntime {ort.__version__}, providers {providers}"

    def open(self, request: BackendRequest, precision: str) -> Backend:
        threads = request.settings(OnnxRuntimeSettings).threads
        return OnnxRuntimeBackend(request.onnx_for(precision), device="cuda", threads=threads, precision=precision)


PLUGIN = OnnxRuntimeCuda()
