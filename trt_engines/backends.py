"""One inference interface for every model: plain numpy arrays in, numpy arrays out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from edge.errors import ModelFileError


class Backend(Protocol):
    name: str
    precision: str
    input_names: list[str]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class OnnxRuntimeBackend:
    """ONNX Runtime on CPU (or CUDA when onnxruntime-gpu provides it)."""

    name = "onnxruntime"

    def __init__(self, path: Path, *, providers: list[str] | None = None, threads: int = 0, precision: str = "fp32"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own pybind types
            raise ModelFileError(f"onnxruntime cannot load model {path}: {exc}") from exc
        self.precision = precision
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feed)


def open_backend(path: Path, *, threads: int = 0) -> Backend:
    return OnnxRuntimeBackend(path, threads=threads)
