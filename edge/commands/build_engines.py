"""`faceedge build-engines`: calibrate (INT8) and build every TensorRT engine ahead of time.

What a Jetson service runs at install time, so that start-up only loads cached engines.
Without TensorRT it still calibrates: the QDQ ONNX is what ONNX Runtime runs for INT8.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import load_config
from ..errors import FaceEdgeError

log = logging.getLogger("faceedge.build_engines")


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=None, help="YAML config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp16")
    from faceedge.trt_engines.model_registry import MODELS

    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated model names; models whose ONNX is not installed are skipped")
    parser.add_argument("--calibration-source", action="append", default=[],
                        help="image folder or video for INT8 calibration (adds to inference.calibration.sources)")


def run(args) -> int:
    from faceedge.trt_engines.backends import describe_backends
    from faceedge.trt_engines.base import BackendRequest
    from faceedge.trt_engines.models import model_path, trt_profile

    config = load_config(args.config, args.set)
    inference = config.inference
    if args.calibration_source:
        inference.calibration.sources = [*inference.calibration.sources, *args.calibration_source]
    paths = {}
    for name in args.models.split(","):
        try:
            paths[name] = model_path(name)
        except FaceEdgeError as exc:
            print(f"{name}: skipped ({exc})")
    splits = None
    if args.precision == "int8":
        from faceedge.calibration.calibrate import calibrate_configured, calibration_splits

        splits = calibration_splits(inference.calibration)
        for name, path in paths.items():
            result = calibrate_configured(name, path, splits, inference.calibration, threads=inference.threads)
            print(f"{name}: INT8 QDQ {result['qdq_onnx']} ({result['method']}); agreement {result['report_split']}")
    trt_ok, detail = next((ok, d) for n, ok, d in describe_backends() if n == "tensorrt")
    if not trt_ok:
        print(f"TensorRT engines not built: {detail}")
        return 0
    from faceedge.trt_engines.engine_build import cached_engine

    folder = Path(inference.engine_cache) if inference.engine_cache else None
    for name, path in paths.items():
        source = BackendRequest(path, model=name).onnx_for(args.precision)
        engine = cached_engine(source, args.precision, trt_profile(name, path, inference.batch_size, config), folder)
        print(f"{name}: TensorRT {args.precision} engine {engine}")
    return 0
