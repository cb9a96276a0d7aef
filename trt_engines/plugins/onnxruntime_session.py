"""ONNX Runtime sessions and the plugin over them, shared by the onnxruntime-cuda and onnxruntime-cpu plugins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from faceedge.edge.errors import ModelFileError

from ..base import Backend, BackendRequest, BackendUnavailable


class OnnxRuntimeSettings(BaseModel):
    # ONNX Runtime intra-op threads per model (0: one per core). One, because the pipeline's
    # stages already run side by side: on 2 cores, 2 intra-op threads cost more CPU than they
    # saved (bench ratio 0.37-0.39 vs 0.40-0.42 with 1).
    threads: int = Field(1, ge=0)


class OnnxRuntimeBackend:
    """ONNX Runtime on CPU, or on CUDA when onnxruntime-gpu provides it."""

    def __init__(self, path: Path, *, device: str = "cpu", threads: int = 0, precision: str = "fp32"):
        import onnxruntime as ort

        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable("onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        self.name = f"onnxruntime-{device}"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads otherwise spin, stealing the cores the decoder threads need:
        # measured 0.19-0.25 -> 0.34-0.39 pipeline/decode ratio on the 2-core machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own pybind types
            raise ModelFileError(f"onnxruntime cannot load model {path}: {exc}") from exc
        self.precision = precision
        self.providers = self.session.get_providers()
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feed)


class OnnxRuntimePlugin:
    """ONNX Runtime on `device` ("cpu" or "cuda") as a backend plugin: `onnxruntime-<device>`."""

    precisions = ("fp32", "int8")  # int8: the QDQ ONNX calibration writes
    settings = OnnxRuntimeSettings

    def __init__(self, device: str, order: int):
        self.device, self.order = device, order
        self.name = f"onnxruntime-{device}"

    def describe(self) -> tuple[bool, str]:
        import onnxruntime as ort

        if self.device == "cpu":
            return True, f"onnxruntime {ort.__version__}"
        providers = ort.get_available_providers()
        return "CUDAExecutionProvider" in providers, f"onnxruntime {ort.__version__}, providers {providers}"

    def open(self, request: BackendRequest, precision: str) -> Backend:
        threads = request.settings(OnnxRuntimeSettings).threads
        return OnnxRuntimeBackend(request.onnx_for(precision), device=self.device, threads=threads,
                                  precision=precision)
