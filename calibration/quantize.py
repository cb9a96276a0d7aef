"""Static INT8 quantisation with ONNX Runtime into a QDQ ONNX that TensorRT also builds from.

QDQ format, per-channel symmetric int8 weights and symmetric int8 activations (zero
point 0), which is what TensorRT's explicit quantisation accepts.
"""

from __future__ import annotations

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


def quantize_qdq(float_path: Path, out_path: Path, input_name: str, batches: list[np.ndarray],
                 method: str = "entropy", percentile: float = 99.999) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    calibrate = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
                 "minmax": CalibrationMethod.MinMax}[method]
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(float_path), str(pre), skip_symbolic_shape=False)
        except Exception:  # symbolic inference gives up on some dynamic graphs (YuNet's free H, W)
            quant_pre_process(str(float_path), str(pre), skip_symbolic_shape=True)
        staged = Path(tmp) / "qdq.onnx"
        quantize_static(
            str(pre), str(staged), ArrayReader(input_name, batches),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=calibrate,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                           "CalibPercentile": percentile, "CalibTensorRangeSymmetric": True},
        )
        tmp_out = out_path.with_suffix(f".tmp{os.getpid()}")
        shutil.move(staged, tmp_out)
        os.replace(tmp_out, out_path)
    return out_path
