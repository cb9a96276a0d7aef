"""TensorRT 10: build an engine from ONNX (FP32, FP16, or INT8 from a QDQ ONNX), cache it, run it.

Build: ONNX parser -> builder config (FP16 flag; INT8 flag for explicit quantisation,
whose scales come from the Q/DQ nodes calibration wrote) -> one optimisation profile for
the dynamic batch (and spatial size, for the detector) -> serialised plan. A timing cache
per GPU/TensorRT version makes rebuilds fast. Plans are cached under `engine_cache.EngineKey`.

Run: device buffers from the CUDA runtime (cuda-python), grown on demand, host<->device
copies and `execute_async_v3` on one CUDA stream.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edge.errors import ModelFileError
from edge.model_files import cache_dir as faceedge_cache_dir, load_onnx, sha256_file

from .backends import BackendUnavailable
from .engine_cache import ShapeProfile, batch_profile, engine_path, make_key, write_sidecar

log = logging.getLogger("faceedge.tensorrt")
WORKSPACE_BYTES = 1 << 30


def _imports():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(f"tensorrt is not installed: {exc}") from exc
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise BackendUnavailable(f"cuda-python is not installed: {exc}") from exc
    return trt, cudart


def _check(result):
    """cuda-python returns (error, *values); raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


def gpu_identity() -> tuple[str, str]:
    """(GPU name, compute capability) of device 0."""
    _, cudart = _imports()
    count = _check(cudart.cudaGetDeviceCount())
    if count < 1:
        raise BackendUnavailable("no CUDA device")
    props = _check(cudart.cudaGetDeviceProperties(0))
    name = props.name.decode(errors="replace").rstrip("\0") if isinstance(props.name, bytes) else str(props.name)
    return name, f"{props.major}.{props.minor}"


def default_profile(onnx_path: Path, max_batch: int) -> ShapeProfile:
    """Batch 1..max_batch at the ONNX's fixed per-item shape; any other free dim needs an explicit profile."""
    profile: ShapeProfile = {}
    model = load_onnx(onnx_path)
    inits = {init.name for init in model.graph.initializer}
    for graph_input in model.graph.input:
        if graph_input.name in inits:
            continue
        dims = graph_input.type.tensor_type.shape.dim[1:]
        if any(not d.HasField("dim_value") for d in dims):
            raise ModelFileError(f"{onnx_path}: input {graph_input.name!r} has free non-batch dims; pass a profile")
        profile.update(batch_profile(graph_input.name, tuple(d.dim_value for d in dims), max_batch,
                                     min(8, max_batch)))
    return profile


def build_engine(onnx_path: Path, precision: str, profile: ShapeProfile, timing_cache: Path | None = None) -> bytes:
    trt, _ = _imports()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFileError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # INT8 engines keep unquantised layers in FP16
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit quantisation: scales from the QDQ nodes
    shapes = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        shapes.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(shapes)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelFileError(f"TensorRT failed to build an engine for {onnx_path} at {precision}")
    if timing_cache:
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(plan)


def cached_engine(onnx_path: Path, precision: str, profile: ShapeProfile, cache_dir: Path | None = None) -> Path:
    """Path of the engine for this exact ONNX/GPU/TensorRT/precision/profile, built if missing."""
    trt, _ = _imports()
    gpu, capability = gpu_identity()
    key = make_key(sha256_file(onnx_path), gpu, capability, trt.__version__, precision, profile)
    folder = Path(cache_dir) if cache_dir else faceedge_cache_dir() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    target = engine_path(folder, Path(onnx_path).stem, key)
    if target.is_file():
        return target
    log.info("building TensorRT %s engine for %s (cache miss %s)", precision, onnx_path.name, target.name)
    timing = folder / f"timing-{gpu.replace(' ', '_')}-{capability}-trt{trt.__version__}.cache"
    plan = build_engine(onnx_path, precision, profile, timing)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(plan)
    os.replace(tmp, target)
    write_sidecar(target, key)
    return target


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, plan_path: Path, precision: str):
        trt, cudart = _imports()
        self.trt, self.cudart = trt, cudart
        self.precision = precision
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
        if self.engine is None:
            raise ModelFileError(f"TensorRT cannot load engine {plan_path}")
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, capacity bytes)

    @classmethod
    def from_onnx(cls, onnx_path: Path, *, precision: str, max_batch: int = 32, profile: ShapeProfile | None = None,
                  cache_dir: Path | None = None) -> "TensorRTBackend":
        _imports()
        gpu_identity()
        profile = profile or default_profile(onnx_path, max_batch)
        return cls(cached_engine(Path(onnx_path), precision, profile, cache_dir), precision)

    def _device(self, name: str, nbytes: int) -> int:
        pointer, capacity = self.buffers.get(name, (0, 0))
        if nbytes > capacity:
            if pointer:
                _check(self.cudart.cudaFree(pointer))
            pointer, capacity = _check(self.cudart.cudaMalloc(nbytes)), nbytes
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
            _check(cudart.cudaMemcpyAsync(pointer, array.ctypes.data, array.nbytes, h2d, self.stream))
            self.context.set_tensor_address(name, pointer)
        outputs = []
        for name in self.output_names:
            out = np.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name])
            self.context.set_tensor_address(name, self._device(name, max(out.nbytes, 1)))
            outputs.append(out)
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        for name, out in zip(self.output_names, outputs):
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, self.buffers[name][0], out.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return [o.astype(np.float32, copy=False) for o in outputs]

    def __del__(self):
        for pointer, _ in getattr(self, "buffers", {}).values():
            self.cudart.cudaFree(pointer)
