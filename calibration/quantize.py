"""Static INT8 quantisation with ONNX Runtime into a QDQ ONNX that TensorRT also builds from.

QDQ format, per-channel symmetric int8 weights, and uint8 activations over each tensor's
calibrated range: a ReLU output spans [0, max], so uint8 gives it all 256 levels where
symmetric int8 leaves it 128 (the selection model's INT8 copy kept the best face in 0.944
of the choose tracks with uint8 activations, 0.904 with symmetric int8, at the same
layout). TensorRT wants symmetric int8 activations and float biases; it builds from
`trt_engines.tensorrt_qdq.tensorrt_qdq`, which re-encodes these same scales.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

METHODS = ("entropy", "percentile", "minmax")


class ArrayReader:
    """onnxruntime CalibrationDataReader over a list of input batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self._items = iter([{input_name: b} for b in batches])

    def get_next(self):
        return next(self._items, None)


@contextlib.contextmanager
def _working_directory(path: str):
    """chdir for the block (calibration is a single-threaded command, never inside the pipeline)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


WEIGHTED_OPS = {"Conv", "Gemm", "MatMul", "ConvTranspose"}


def float_nodes(model, leading: int = 1) -> list[str]:
    """The first `leading` weighted layers (graph order), and every node from each graph
    output back to (and including) the last weighted layer: they stay in float.

    The first layer sees raw pixels, and a score squeezed through an int8 output grid
    loses the resolution that picks one face among several good ones. Measured on the
    selection model: best face kept 0.683 (all int8) -> 0.867 (float head) -> 0.917
    (float head and first layer), 60 report tracks each. Its early activations are where
    int8 rounding hurts most (docs/decisions/011-selection-int8-layout.md), so it keeps three leading layers in float.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    head, stack = [], [out.name for out in model.graph.output]
    head.extend([n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS][:max(0, leading)])
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in head:
            continue
        head.append(node.name)
        if node.op_type not in WEIGHTED_OPS:
            stack.extend(name for name in node.input if name in producer)
    return head


def quantize_candidates(float_path: Path, input_name: str, batches: list[np.ndarray],
                        candidates: list[tuple[Path, str, float]], leading_float: int = 1) -> list[Path]:
    """Each (out_path, method, percentile) calibrated from one pre-processing of `float_path`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    unknown = sorted({method for _, method, _ in candidates} - set(METHODS))
    if unknown:
        raise ValueError(f"calibration method must be one of {METHODS}, got {unknown}")
    calibrators = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
                   "minmax": CalibrationMethod.MinMax}
    float_path = Path(float_path).resolve()  # we chdir below
    written = []
    with tempfile.TemporaryDirectory() as tmp, _working_directory(tmp):
        # ORT's pre-processing writes scratch files (sym_shape_infer_temp.onnx, <uuid>.data)
        # into the working directory; keep them in the temporary one.
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(float_path), str(pre), skip_symbolic_shape=False)
        except Exception:  # symbolic inference gives up on some dynamic graphs (YuNet's free H, W)
            quant_pre_process(str(float_path), str(pre), skip_symbolic_shape=True)
        import onnx

        excluded = float_nodes(onnx.load(str(pre)), leading_float)
        for out_path, method, percentile in candidates:
            staged = Path(tmp) / "qdq.onnx"
            quantize_static(
                str(pre), str(staged), ArrayReader(input_name, batches),
                nodes_to_exclude=excluded,
                quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=calibrators[method],
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                               "CalibPercentile": percentile},
            )
            out_path = Path(out_path).resolve()
            tmp_out = out_path.with_suffix(f".tmp{os.getpid()}")
            shutil.move(staged, tmp_out)
            os.replace(tmp_out, out_path)
            written.append(out_path)
    return written
