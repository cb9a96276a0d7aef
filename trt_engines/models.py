"""The models faceedge accelerates, each as a float ONNX with a free batch axis.

Which roles there are, and what each is fed, is in `model_registry`. Any ONNX whose first input axis
is the batch works; this module only frees that axis where an exported graph pinned it to 1,
and opens a role's model with the shape profile its spec gives.
"""

from __future__ import annotations

import os
from pathlib import Path

from faceedge.edge.model_files import free_batch_dim, load_onnx, prepare_onnx

from .engine_cache import ShapeProfile, batch_profile
from .model_registry import MODELS, ItemShapes

BATCH_VERSION = "1"


def _unpin_batch_reshapes(model) -> int:
    """Reshape targets like [1, -1, C] (batch pinned by the exporter) become [0, -1, C] (copy batch)."""
    from onnx import numpy_helper

    targets = {node.input[1] for node in model.graph.node if node.op_type == "Reshape"}
    changed = 0
    for index, init in enumerate(model.graph.initializer):
        if init.name not in targets:
            continue
        shape = numpy_helper.to_array(init)
        if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1 and -1 in shape[1:]:
            shape = shape.copy()
            shape[0] = 0
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(shape, init.name))
            changed += 1
    return changed


def batched_onnx(ref: str, *, dynamic_hw: bool = False) -> Path:
    """Cached float copy of model `ref` with a free batch axis (checked with a batch-2 shape pass)."""
    import onnx

    prepared = prepare_onnx(ref, dynamic_hw=dynamic_hw)
    target = prepared.with_name(f"{prepared.stem}-dynbatch{BATCH_VERSION}.onnx")
    if target.is_file():
        return target
    model = load_onnx(prepared)
    free_batch_dim(model)
    _unpin_batch_reshapes(model)
    del model.graph.value_info[:]  # stale per-tensor shapes would pin batch 1 again
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    onnx.save(model, str(tmp))
    os.replace(tmp, target)
    return target


def model_path(name: str) -> Path:
    spec = MODELS[name]
    return batched_onnx(spec.ref, dynamic_hw=spec.dynamic_hw)


def input_spec(path: Path, shapes: ItemShapes | None = None) -> tuple[str, tuple[int, ...]]:
    """(input name, per-item shape) of the first graph input; free spatial dims at `shapes.opt`."""
    model = load_onnx(path)
    inits = {init.name for init in model.graph.initializer}
    graph_input = next(i for i in model.graph.input if i.name not in inits)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in graph_input.type.tensor_type.shape.dim[1:]]
    if None in dims:
        if shapes is None:
            raise ValueError(f"{path}: input {graph_input.name} has free dims {dims}; give an item shape")
        dims = list(shapes.opt)
    return graph_input.name, tuple(dims)


def output_names(path: Path) -> list[str]:
    return [output.name for output in load_onnx(path).graph.output]


def metadata_props(path: Path) -> dict[str, str]:
    return {prop.key: prop.value for prop in load_onnx(path).metadata_props}


def trt_profile(name: str, path: Path, max_batch: int, config=None) -> ShapeProfile:
    """Model `name`'s profile: batch 1..max_batch at the shapes its spec gives for `config` (None: defaults)."""
    shapes = MODELS[name].shapes(config)
    input_name, item = input_spec(path, shapes)
    return batch_profile(input_name, item, max_batch, min(8, max_batch),
                         shapes.min if shapes else None, shapes.max if shapes else None)


def shipped_ranges(name: str, ref: str | None = None) -> Path | None:
    """The activation ranges that ship for model `name`, if any. They are the default model's: a user's file
    (`ref`) in the role needs its own calibration."""
    from faceedge.edge.model_files import resolve_model

    spec = MODELS[name]
    return resolve_model(spec.int8_ranges) if spec.int8_ranges and ref is None else None


def open_model(name: str, inference, ref: str | None = None, config=None) -> "Backend":  # noqa: F821
    """Open model `name` (or the file `ref` in its role) as `inference` (the config section) says.

    `config`, the whole configuration, sizes the shape profile of a model whose input size follows it
    (the detector's follows the frame sizes); None: the defaults.
    """
    from .backends import open_backend, settings_of

    path = model_path(name) if ref is None else batched_onnx(ref, dynamic_hw=MODELS[name].dynamic_hw)
    precision = getattr(inference.precision, name)
    return open_backend(path, backend=inference.backend, precision=precision,
                        order=tuple(inference.order_by_model.get(name, inference.order)), model=name,
                        max_batch=inference.batch_size, profile=trt_profile(name, path, inference.batch_size, config),
                        int8_ranges=shipped_ranges(name, ref) if precision == "int8" else None,
                        **settings_of(inference))
