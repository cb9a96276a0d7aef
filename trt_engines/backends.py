"""One inference interface for every model: plain numpy arrays in, numpy arrays out.

`open_backend` picks the first backend that works on this machine, in the configured
order (default: TensorRT, ONNX Runtime with CUDA, torch on CUDA, ONNX Runtime on CPU),
so callers never know which one runs. A backend that cannot serve the requested
precision natively is passed over in a first round; if none can, the first working
backend runs at the nearest precision it has (fp16 -> fp32), and says so in the log.

INT8 always comes from a QDQ ONNX made by `calibration.quantize` (the same file feeds
ONNX Runtime's INT8 kernels and TensorRT's explicit-quantisation build).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from faceedge.edge.errors import ModelFileError

from . import info

log = logging.getLogger("faceedge.backends")

DEFAULT_ORDER = ("tensorrt", "onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu")
# What each backend runs natively; anything else is downgraded or skipped.
NATIVE_PRECISIONS = {
    "tensorrt": ("fp32", "fp16", "int8"),
    "onnxruntime-cuda": ("fp32", "int8"),
    "torch-cuda": ("fp32", "fp16"),
    "onnxruntime-cpu": ("fp32", "int8"),
}
DOWNGRADE = {"fp16": "fp32"}


class Backend(Protocol):
    name: str
    precision: str
    input_names: list[str]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (library, device or model missing); try the next one."""


def int8_model_path(onnx_path: Path) -> Path:
    """Where calibration writes the QDQ INT8 twin of a float ONNX."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.stem + ".int8.onnx")


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


@dataclass
class BackendRequest:
    """Everything a backend factory may need to open one model."""

    path: Path  # float ONNX, dynamic batch
    precision: str = "fp32"
    threads: int = 0
    max_batch: int = 32
    profile: dict | None = None  # TensorRT shape profile; None = batch 1..max_batch at the ONNX shape
    engine_cache: Path | None = None
    torch_module: object | None = None  # nn.Module or path to a torch.export .pt2
    model: str = "model"

    def onnx_for(self, precision: str) -> Path:
        if precision != "int8":
            return self.path
        qdq = int8_model_path(self.path)
        if not qdq.is_file():
            raise ModelFileError(f"no INT8 model for {self.model} ({qdq} missing): run "
                                 f"`faceedge build-engines --precision int8` to calibrate it")
        return qdq


def _tensorrt(req: BackendRequest, precision: str) -> Backend:
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend.from_onnx(req.onnx_for(precision), precision=precision, max_batch=req.max_batch,
                                     profile=req.profile, cache_dir=req.engine_cache)


def _ort_cuda(req: BackendRequest, precision: str) -> Backend:
    return OnnxRuntimeBackend(req.onnx_for(precision), device="cuda", threads=req.threads, precision=precision)


def _torch_cuda(req: BackendRequest, precision: str) -> Backend:
    from .torch_backend import TorchBackend

    return TorchBackend.open(req.torch_module, req.path, precision=precision)


def _ort_cpu(req: BackendRequest, precision: str) -> Backend:
    return OnnxRuntimeBackend(req.onnx_for(precision), device="cpu", threads=req.threads, precision=precision)


FACTORIES: dict[str, Callable[[BackendRequest, str], Backend]] = {
    "tensorrt": _tensorrt,
    "onnxruntime-cuda": _ort_cuda,
    "torch-cuda": _torch_cuda,
    "onnxruntime-cpu": _ort_cpu,
}


def select_backend(req: BackendRequest, order: tuple[str, ...], factories=None) -> tuple[Backend, list[str]]:
    """Open the first backend of `order` that works; return it and why the others were passed over."""
    factories = factories or FACTORIES
    unknown = [name for name in order if name not in factories]
    if unknown:
        raise ModelFileError(f"unknown inference backend(s) {unknown}; known: {list(factories)}")
    skipped: list[str] = []
    rounds = [(name, req.precision) for name in order if req.precision in NATIVE_PRECISIONS[name]]
    fallback = DOWNGRADE.get(req.precision)
    if fallback:
        rounds += [(name, fallback) for name in order
                   if req.precision not in NATIVE_PRECISIONS[name] and fallback in NATIVE_PRECISIONS[name]]
    tried = set()
    for name, precision in rounds:
        tried.add(name)
        try:
            backend = factories[name](req, precision)
        except BackendUnavailable as exc:
            skipped.append(f"{name}: {exc}")
            continue
        except ImportError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        if precision != req.precision:
            log.info("%s: %s has no %s; running %s", req.model, name, req.precision, precision)
        return backend, skipped
    skipped += [f"{name}: cannot run {req.precision}" for name in order if name not in tried]
    raise ModelFileError(f"no inference backend can run {req.model} at {req.precision}: " + "; ".join(skipped))


def open_backend(path: Path, *, backend: str = "auto", precision: str = "fp32", threads: int = 0,
                 order: tuple[str, ...] | list[str] = DEFAULT_ORDER, model: str | None = None,
                 max_batch: int = 32, profile: dict | None = None, engine_cache: Path | None = None,
                 torch_module=None) -> Backend:
    """Open `path` (float ONNX) on `backend` ("auto" = first that works in `order`) at `precision`.

    The choice is logged and recorded for the `faceedge_model_info` metric.
    """
    model = model or Path(path).stem
    req = BackendRequest(Path(path), precision, threads, max_batch, profile, engine_cache, torch_module, model)
    chosen_order = tuple(order) if backend == "auto" else (backend,)
    chosen, skipped = select_backend(req, chosen_order)
    for reason in skipped:
        log.debug("%s: passed over %s", model, reason)
    log.info("model %s runs on %s at %s", model, chosen.name, chosen.precision)
    info.record(model, chosen.name, chosen.precision)
    return chosen


def describe_backends() -> list[tuple[str, bool, str]]:
    """(backend, usable here, detail) for each backend, without opening a model."""
    rows = []
    try:
        from .tensorrt_backend import _imports, gpu_identity

        trt, _ = _imports()
        gpu, capability = gpu_identity()
        rows.append(("tensorrt", True, f"TensorRT {trt.__version__} on {gpu} (sm {capability})"))
    except (BackendUnavailable, RuntimeError) as exc:
        rows.append(("tensorrt", False, str(exc)))
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        cuda = "CUDAExecutionProvider" in providers
        rows.append(("onnxruntime-cuda", cuda, f"onnxruntime {ort.__version__}, providers {providers}"))
        rows.append(("onnxruntime-cpu", True, f"onnxruntime {ort.__version__}"))
    except ImportError as exc:
        rows += [("onnxruntime-cuda", False, str(exc)), ("onnxruntime-cpu", False, str(exc))]
    try:
        import torch

        cuda = torch.cuda.is_available()
        detail = f"torch {torch.__version__}, " + (f"CUDA {torch.cuda.get_device_name(0)}" if cuda else "no CUDA device")
        rows.append(("torch-cuda", cuda, detail + " (runs models that ship a torch module or .pt2)"))
    except ImportError as exc:
        rows.append(("torch-cuda", False, str(exc)))
    order = {name: i for i, name in enumerate(DEFAULT_ORDER)}
    return sorted(rows, key=lambda row: order[row[0]])
