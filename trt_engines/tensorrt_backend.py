"""TensorRT 10: build an engine from ONNX (FP32, FP16, or INT8 from a QDQ ONNX), cache it, run it.

Build: ONNX parser -> builder config (FP16 flag; INT8 flag for explicit quantisation,
whose scales come from the Q/DQ nodes calibration wrote, re-encoded by `tensorrt_qdq`
into the symmetric int8 TensorRT accepts) -> one optimisation profile for
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

from faceedge.edge.errors import ModelFileError
from faceedge.edge.model_files import cache_dir as faceedge_cache_dir, load_onnx, sha256_file

from .backends import BackendUnavailable
from .engine_cache import ShapeProfile, batch_profile, engine_path, make_key, write_sidecar

log = logging.getLogger("faceedge.tensorrt")
WORKSPACE_BYTES = 1 << 30
TENSORRT_QDQ_VERSION = "1"  # bump when tensorrt_qdq writes a different graph


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


def tensorrt_qdq(qdq_path: Path) -> Path:
    """The calibrated QDQ ONNX in the form TensorRT's parser accepts, written beside it.

    Calibration's uint8 activation ranges [-z*s, (255-z)*s] become symmetric int8 with the
    scale that covers the same range (zero point 0) and an explicit clamp to the range.
    DequantizeLinear nodes of int32 or uint8 constants (biases, constant operands), which the
    parser rejects, become the floats they stand for. Weights are already symmetric int8 and
    are left as they are.
    """
    import onnx

    qdq_path = Path(qdq_path)
    target = qdq_path.with_name(f"{qdq_path.stem}.trt{TENSORRT_QDQ_VERSION}.onnx")
    if target.is_file() and target.stat().st_mtime >= qdq_path.stat().st_mtime:
        return target
    model = load_onnx(qdq_path)
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    _fold_quantized_constants(graph, inits)
    _restore_clamps(graph, inits)
    _symmetric_activations(graph, inits)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]  # Q outputs changed from uint8 to int8
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    onnx.save(model, str(tmp))
    os.replace(tmp, target)
    return target


def _array(inits: dict, name: str) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(inits[name]).astype(np.float64)


def _fold_quantized_constants(graph, inits: dict) -> None:
    """Constants quantised to int32 (biases) or to the activations' uint8 become the floats they stand for."""
    from onnx import TensorProto, numpy_helper

    nodes = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
             and inits[n.input[0]].data_type in (TensorProto.INT32, TensorProto.UINT8)]
    for node in nodes:
        data, scale = _array(inits, node.input[0]), _array(inits, node.input[1])
        zero = _array(inits, node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(scale.shape)
        if scale.ndim == 1 and data.ndim > 1:  # per-axis parameters broadcast along `axis`
            shape = [1] * data.ndim
            shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        graph.initializer.append(numpy_helper.from_array(((data - zero) * scale).astype(np.float32), node.output[0]))
        graph.node.remove(node)


def _restore_clamps(graph, inits: dict) -> None:
    """ORT drops a ReLU (or Clip) before a uint8 QuantizeLinear whose range starts where the
    activation clamps: the uint8 clamp does its work. Symmetric int8 keeps values below that
    range, so the clamp comes back as an explicit Relu (zero point 0) or Clip before each Q.
    Ops that pass values through (MaxPool, Reshape...) from a DequantizeLinear with the same
    parameters are already inside the range and need no clamp."""
    from onnx import TensorProto, helper, numpy_helper

    producer = {out: node for node in graph.node for out in node.output}

    def in_range(node) -> bool:
        source = producer.get(node.input[0])
        upstream = producer.get(source.input[0]) if source is not None and source.input else None
        return upstream is not None and upstream.op_type == "DequantizeLinear" and \
            list(upstream.input[1:3]) == list(node.input[1:3])

    position = 0
    while position < len(graph.node):
        node = graph.node[position]
        position += 1
        if node.op_type != "QuantizeLinear" or inits[node.input[2]].data_type != TensorProto.UINT8 or in_range(node):
            continue
        zero, scale = _array(inits, node.input[2]), _array(inits, node.input[1])
        clamped = f"{node.input[0]}_clamped_{node.name or position}"
        if not zero.any():
            clamp = helper.make_node("Relu", [node.input[0]], [clamped])
        else:
            bounds = [f"{clamped}_min", f"{clamped}_max"]
            for name, bound in zip(bounds, (-zero * scale, (255 - zero) * scale)):
                graph.initializer.append(numpy_helper.from_array(np.float32(bound.item()), name))
                inits[name] = graph.initializer[-1]
            clamp = helper.make_node("Clip", [node.input[0], *bounds], [clamped])
        node.input[0] = clamped
        graph.node.insert(position - 1, clamp)
        position += 1


def _symmetric_activations(graph, inits: dict) -> None:
    """uint8 (scale, zero point) pairs -> int8 scales covering the same range, zero point 0."""
    from onnx import TensorProto, numpy_helper

    # Every pair is read before any is rewritten: ORT shares one zero-point initializer between tensors.
    pairs = {(n.input[1], n.input[2]) for n in graph.node
             if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2
             and inits[n.input[2]].data_type == TensorProto.UINT8}
    zeros = {scale: _array(inits, zero) for scale, zero in pairs}
    for scale_name, zero in zeros.items():
        bound = np.maximum(zero, 255 - zero) * _array(inits, scale_name)
        inits[scale_name].CopyFrom(numpy_helper.from_array((bound / 127).astype(np.float32), scale_name))
    for zero_name in {zero for _, zero in pairs}:
        shape = numpy_helper.to_array(inits[zero_name]).shape
        inits[zero_name].CopyFrom(numpy_helper.from_array(np.zeros(shape, np.int8), zero_name))


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
