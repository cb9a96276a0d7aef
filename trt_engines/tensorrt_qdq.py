"""The calibrated QDQ ONNX re-encoded into the form TensorRT's explicit quantisation accepts.

Pure ONNX (no TensorRT needed): calibration reports the agreement of this form too, and the
TensorRT plugin builds its INT8 engines from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceedge.edge.model_files import load_onnx

TENSORRT_QDQ_VERSION = "1"  # bump when tensorrt_qdq writes a different graph


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
