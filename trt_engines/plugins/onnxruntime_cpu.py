"""ONNX Runtime on CPU: runs everywhere, last in the default order."""

from __future__ import annotations

from ..base import Backend, BackendRequest
from .onnxruntime_session import OnnxRuntimeBackend, OnnxRuntimeSettings


class OnnxRuntimeCpu:
    name = "onnxruntime-cpu"
    precisions = ("fp32", "int8")  # int8: the QDQ ONNX calibration writes
    order = 40
    settings = OnnxRuntimeSettings

    def describe(self) -> tuple[bool, str]:
        import onnxruntime as ort

        return True, f"onnxruntime {ort.__version__}"

    def open(self, request: BackendRequest, precision: str) -> Backend:
        threads = request.settings(OnnxRuntimeSettings).threads
        return OnnxRuntimeBackend(request.onnx_for(precision), device="cpu", threads=threads, precision=precision)


PLUGIN = OnnxRuntimeCpu()
