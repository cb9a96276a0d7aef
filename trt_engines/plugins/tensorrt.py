"""TensorRT 10: engines built from the ONNX and cached (`engine_build`), run on one CUDA stream.

Device buffers come from the CUDA runtime (cuda-python), grown on demand; host<->device
copies and `execute_async_v3` run on one stream. INT8 is explicit quantisation from the
QDQ ONNX calibration writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from faceedge.edge.errors import ModelFileError

from ..base import Backend, BackendRequest
from ..engine_build import cached_engine, check_cuda, default_profile, gpu_identity, tensorrt_imports
from ..engine_cache import ShapeProfile


class TensorRTSettings(BaseModel):
    # null: <faceedge cache>/engines
    engine_cache: str | None = None


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, plan_path: Path, precision: str):
        trt, cudart = tensorrt_imports()
        self.trt, self.cudart = trt, cudart
        self.precision = precision
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
        if self.engine is None:
            raise ModelFileError(f"TensorRT cannot load engine {plan_path}")
        self.context = self.engine.create_execution_context()
        self.stream = check_cuda(cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity bytes)

    @classmethod
    def from_onnx(cls, onnx_path: Path, *, precision: str, max_batch: int = 32, profile: ShapeProfile | None = None,
                  cache_dir: Path | None = None) -> "TensorRTBackend":
        tensorrt_imports()
        gpu_identity()
        profile = profile or default_profile(onnx_path, max_batch)
        return cls(cached_engine(Path(onnx_path), precision, profile, cache_dir), precision)

    def _device(self, name: str, nbytes: int) -> int:
        pointer, capacity = self.buffers.get(name, (0, 0))
        if nbytes > capacity:
            if pointer:
                check_cuda(self.cudart.cudaFree(pointer))
            pointer, capacity = check_cuda(self.cudart.cudaMalloc(nbytes)), nbytes
            self.buffers[name] = (pointer, capacity)
        return pointer

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        cudart = self.cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        hosts = []
        for name in self.input_names:
            array = np.ascontiguousarray(feed[name], dtype=self.dtypes[name])
            hosts.append(array)  # keep alive until the stream is synchronised
            self.context.set_input_shape(name, array.shape)
            pointer = self._device(name, array.nbytes)
            check_cuda(cudart.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes, h2d, self.stream))
            self.context.set_tensor_address(name, pointer)
        outputs = []
        for name in self.output_names:
            out = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name])
            self.context.set_tensor_address(name, self._device(name, max(out.nbytes, 1)))
            outputs.append(out)
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        for name, out in zip(self.output_names, outputs):
            check_cuda(cudart.cudaMemcpyAsync(out.ctypes.data, self.buffers[name][0], out.nbytes, d2h, self.stream))
        check_cuda(cudart.cudaStreamSynchronize(self.stream))
        return [o.astype(np.float32, copy=False) for o in outputs]

    def __del__(self):
        for pointer, _ in getattr(self, "buffers", {}).values():
            self.cudart.cudaFree(pointer)


class TensorRT:
    name = "tensorrt"
    precisions = ("fp32", "fp16", "int8")
    order = 10
    settings = TensorRTSettings

    def describe(self) -> tuple[bool, str]:
        trt, _ = tensorrt_imports()
        gpu, capability = gpu_identity()
        return True, f"TensorRT {trt.__version__} on {gpu} (sm {capability})"

    def open(self, request: BackendRequest, precision: str) -> Backend:
        cache = request.settings(TensorRTSettings).engine_cache
        return TensorRTBackend.from_onnx(request.onnx_for(precision), precision=precision,
                                         max_batch=request.max_batch, profile=request.profile,
                                         cache_dir=Path(cache) if cache else None)


PLUGIN = TensorRT()
