"""Static INT8 calibration with ONNX Runtime: candidate QDQ copies of a float ONNX, each with its ranges file.

The quantisation settings and forms are `trt_engines.int8_ranges`'s; this module measures the ranges on
calibration data, once per candidate method.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from faceedge.trt_engines.int8_ranges import pre_process, quantize, ranges_path, record_settings, working_directory

METHODS = ("entropy", "percentile", "minmax")


class ArrayReader:
    """onnxruntime CalibrationDataReader over a list of input batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]):
        self._items = iter([{input_name: b} for b in batches])

    def get_next(self):
        return next(self._items, None)


def quantize_candidates(float_path: Path, input_name: str, batches: list[np.ndarray],
                        candidates: list[tuple[Path, str, float]], leading_float: int = 1) -> list[Path]:
    """Each (out_path, method, percentile) calibrated from one pre-processing of `float_path`; each
    out_path gets its ranges file (`ranges_path`)."""
    unknown = sorted({method for _, method, _ in candidates} - set(METHODS))
    if unknown:
        raise ValueError(f"calibration method must be one of {METHODS}, got {unknown}")
    float_path = Path(float_path).resolve()  # we chdir below
    written = []
    with tempfile.TemporaryDirectory() as tmp, working_directory(tmp):
        pre = Path(tmp) / "pre.onnx"
        pre_process(float_path, pre)
        for out_path, method, percentile in candidates:
            out_path = Path(out_path).resolve()
            ranges = ranges_path(out_path)
            ranges.unlink(missing_ok=True)  # present, ORT would read it instead of calibrating
            staged = quantize(pre, Path(tmp) / "qdq.onnx", "qdq", ranges, reader=ArrayReader(input_name, batches),
                              method=method, percentile=percentile, leading_float=leading_float)
            if ranges.is_file():
                record_settings(ranges, method=method, percentile=percentile, leading_float_layers=leading_float)
            tmp_out = out_path.with_suffix(f".tmp{os.getpid()}")
            shutil.move(staged, tmp_out)
            os.replace(tmp_out, out_path)
            written.append(out_path)
    return written
