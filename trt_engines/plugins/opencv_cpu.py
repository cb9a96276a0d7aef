"""OpenCV's DNN module on CPU (`cv2.dnn`, from the OpenCV faceedge already depends on).

Last in the default order: ONNX Runtime is faster for faceedge's other models, but OpenCV runs
SFace, the identity check's recognizer, at 1.7-1.9x ONNX Runtime's speed on one core, with the
same embeddings, so `inference.order_by_model` puts it first on CPU for the recognizer
(docs/decisions/017-recognizer-on-opencv-dnn.md). In INT8 it runs the QOperator form, which ONNX
Runtime's quantiser makes from the model's ranges (`trt_engines.int8_ranges`).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from ..base import Backend, BackendRequest, BackendUnavailable


class OpenCvSettings(BaseModel):
    # OpenCV's worker threads. cv2.setNumThreads is process-wide: it also sets how many threads the
    # decoder's and aligner's resizes and warps use. One, for the reason ONNX Runtime gets one
    # (docs/decisions/001-onnxruntime-one-thread-per-model.md, 017-recognizer-on-opencv-dnn.md).
    opencv_threads: int = Field(1, ge=1)


class OpenCvDnnBackend:
    name = "opencv-cpu"

    def __init__(self, path: Path, threads: int, precision: str = "fp32"):
        import cv2
        import onnx

        cv2.setNumThreads(threads)
        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise BackendUnavailable(f"OpenCV cannot load {Path(path).name}: {str(exc).strip()[:200]}") from exc
        graph = onnx.load(str(path), load_external_data=False).graph
        initializers = {init.name for init in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in initializers]
        self.output_names = [o.name for o in graph.output]
        self.precision = precision
        self.lock = threading.Lock()  # one cv2.dnn.Net runs one forward at a time

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self.lock:
            for name in self.input_names:
                self.net.setInput(np.ascontiguousarray(feed[name], dtype=np.float32), name)
            outputs = self.net.forward(self.output_names)
        return [np.asarray(output) for output in outputs]


class OpenCvPlugin:
    name = "opencv-cpu"
    # int8: the QOperator form (OpenCV reads no QDQ), made from calibration's or the shipped ranges.
    precisions = ("fp32", "int8")
    order = 50
    settings = OpenCvSettings

    def describe(self) -> tuple[bool, str]:
        import cv2

        return True, f"OpenCV {cv2.__version__} DNN"

    def open(self, request: BackendRequest, precision: str) -> Backend:
        path = request.qoperator_onnx() if precision == "int8" else request.path
        return OpenCvDnnBackend(path, request.settings(OpenCvSettings).opencv_threads, precision)


PLUGIN = OpenCvPlugin()
