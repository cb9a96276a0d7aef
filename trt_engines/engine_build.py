"""TensorRT 10: build an engine from ONNX (FP32, FP16, or INT8 from a QDQ ONNX) and cache it.

Build: ONNX parser -> builder config (FP16 flag; INT8 flag for explicit quantisation,
whose scales come from the Q/DQ nodes calibration wrote, re-encoded by `tensorrt_qdq`
into the symmetric int8 TensorRT accepts) -> one optimisation profile for
the dynamic batch (and spatial size, for the detector) -> serialised plan. A timing cache
per GPU/TensorRT version makes rebuilds fast. Plans are cached under `engine_cache.EngineKey`.
The plugin that runs them is `plugins/tensorrt.py`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from faceedge.edge.errors import ModelFileError
from faceedge.edge.model_files import cache_dir as faceedge_cache_dir, load_onnx, sha256_file

from .base import BackendUnavailable
from .engine_cache import ShapeProfile, batch_profile, engine_path, make_key, write_sidecar
from .tensorrt_qdq import tensorrt_qdq

log = logging.getLogger("faceedge.tensorrt")
WORKSPACE_BYTES = 1 << 30


def tensorrt_imports():
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


def check_cuda(result):
    """cuda-python returns (error, *values); raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


def gpu_identity() -> tuple[str, str]:
    """(GPU name, compute capability) of device 0."""
    _, cudart = tensorrt_imports()
    count = check_cuda(cudart.cudaGetDeviceCount())
    if count < 1:
        raise BackendUnavailable("no CUDA device")
    props = check_cuda(cudart.cudaGetDeviceProperties(0))
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
    trt, _ = tensorrt_imports()
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
    trt, _ = tensorrt_imports()
    gpu, capability = gpu_identity()
    if precision == "int8":
        onnx_path = tensorrt_qdq(onnx_path)
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
