"""`faceedge bench models`: per-model throughput and latency by backend and precision, and INT8 agreement.

For every model, every backend and precision that opens natively on this machine:
throughput at batch 1, 8 and 32 and per-call latency p50/p95, all measured in one run,
plus the INT8 agreement figures from calibrating on the given sources. A model whose
trained ONNX is not installed is measured on a stand-in CNN of the same interface
(exported to a temporary folder, never shipped) when `--standin` is given, and marked so.
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from faceedge.trt_engines.model_registry import MODELS

from ..config import load_config
from ..errors import FaceEdgeError

log = logging.getLogger("faceedge.bench_models")


def add_arguments(parser) -> None:
    parser.add_argument("--config", default=None, help="YAML config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", dest="json_out", default=None, help="write the results here as JSON")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed run per model/backend/precision/batch")
    parser.add_argument("--calibration-source", action="append", default=[],
                        help="image folder or video for INT8 calibration and agreement")
    parser.add_argument("--standin", action="store_true",
                        help="measure a stand-in CNN for trained models that are not installed")


def random_feed(input_name: str, item_shape: tuple[int, ...], batch: int, rng: np.random.Generator) -> dict:
    return {input_name: (rng.random((batch, *item_shape), dtype=np.float32) * 255).astype(np.float32)}


def measure(backend, input_name: str, item_shape: tuple[int, ...], batch: int, seconds: float,
            rng: np.random.Generator) -> dict:
    feed = random_feed(input_name, item_shape, batch, rng)
    backend.run(feed)  # warm-up: allocations, lazy kernels
    latencies = []
    start = time.perf_counter()
    while len(latencies) < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        backend.run(feed)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"items_per_s": batch * len(latencies) / total,
            "p50_ms": float(np.percentile(latencies, 50) * 1e3), "p95_ms": float(np.percentile(latencies, 95) * 1e3),
            "calls": len(latencies)}


def paired_speedup(reference, test, input_name: str, item_shape: tuple[int, ...], batch: int, seconds: float,
                   rng: np.random.Generator) -> float:
    """reference time / test time over calls that alternate between the two on the same batch, so a
    host that speeds up or slows down during the run moves both sides alike."""
    feed = random_feed(input_name, item_shape, batch, rng)
    for backend in (reference, test):  # warm-up
        backend.run(feed)
    spent = {"reference": 0.0, "test": 0.0}
    start, calls = time.perf_counter(), 0
    while calls < 3 or time.perf_counter() - start < seconds:
        for side, backend in (("reference", reference), ("test", test)):
            t0 = time.perf_counter()
            backend.run(feed)
            spent[side] += time.perf_counter() - t0
        calls += 1
    return spent["reference"] / spent["test"]


def standin_path(name: str, folder: Path, splits) -> Path:
    """The stand-in model `name`'s spec names, exported to `folder`."""
    from faceedge.calibration.standin import STANDINS

    crops = splits["fit"].faces.crops if splits else None
    return STANDINS[MODELS[name].standin](folder / f"{name}.onnx", crops, list(MODELS).index(name))


def open_each(path: Path, name: str, precision: str, inference, profile) -> list:
    """Every backend of the configured order that runs `precision` natively here."""
    from faceedge.trt_engines.backends import registered, settings_of
    from faceedge.trt_engines.base import BackendRequest, BackendUnavailable
    from faceedge.trt_engines.models import shipped_ranges

    opened = []
    req = BackendRequest(path, precision, inference.batch_size, profile, model=name, options=settings_of(inference),
                         int8_ranges=shipped_ranges(name) if precision == "int8" else None)
    plugins = registered()
    for backend in inference.order:
        if precision not in plugins[backend].precisions:
            continue
        try:
            opened.append(plugins[backend].open(req, precision))
        except (BackendUnavailable, ImportError) as exc:
            log.info("%s %s on %s: unavailable (%s)", name, precision, backend, exc)
    return opened


def run(args) -> int:
    import onnxruntime as ort

    from faceedge.calibration.calibrate import calibrate_configured, calibration_splits
    from faceedge.trt_engines.backends import describe_backends
    from faceedge.trt_engines.base import int8_model_path
    from faceedge.trt_engines.models import input_spec, model_path, shipped_ranges, trt_profile

    config = load_config(args.config, args.set)
    inference = config.inference
    if args.calibration_source:
        inference.calibration.sources = [*inference.calibration.sources, *args.calibration_source]
    batches = [int(b) for b in args.batches.split(",")]
    inference.batch_size = max(inference.batch_size, *batches)
    splits = calibration_splits(inference.calibration) if inference.calibration.sources else None
    rng = np.random.default_rng(0)
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": inference.threads,
                          "onnxruntime": ort.__version__,
                          "backends": {n: (ok, d) for n, ok, d in describe_backends()}},
              "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            standin = False
            try:
                path = model_path(name)
            except FaceEdgeError as exc:
                if not args.standin or MODELS[name].standin is None:
                    print(f"{name}: skipped ({exc})")
                    continue
                path, standin = standin_path(name, Path(tmp), splits), True
            entry = result["models"].setdefault(name, {"standin": standin, "onnx": str(path)})
            if splits is not None:
                cal = calibrate_configured(name, path, splits, inference.calibration, threads=inference.threads)
                entry["int8_agreement"] = {"method": cal["method"], "leading_float_layers": cal["leading_float_layers"],
                                           "fit_items": cal["fit_items"], "groups": cal["groups"],
                                           "identities": inference.calibration.identities,
                                           **cal["report_split"]}
                entry["int8_agreement"].setdefault("best_face", None)
                entry["int8_agreement"]["tensorrt_form"] = cal["tensorrt_form_report_split"]
            input_name, item = input_spec(path, MODELS[name].shapes(config))
            profile = trt_profile(name, path, inference.batch_size, config)
            on_cpu = {}  # precision -> the onnxruntime-cpu backend, for the paired INT8/FP32 ratio
            for precision in ("fp32", "fp16", "int8"):
                if precision == "int8" and not int8_model_path(path).is_file() and shipped_ranges(name) is None:
                    continue
                for backend in open_each(path, name, precision, inference, profile):
                    if backend.name == "onnxruntime-cpu":
                        on_cpu[precision] = backend
                    cells = entry.setdefault(backend.name, {}).setdefault(precision, {})
                    for batch in batches:
                        cells[f"b{batch}"] = measure(backend, input_name, item, batch, args.seconds, rng)
                        print(f"{name:9s} {backend.name:16s} {precision:4s} b{batch:<3d} "
                              f"{cells[f'b{batch}']['items_per_s']:9.1f} items/s  "
                              f"p50 {cells[f'b{batch}']['p50_ms']:8.2f} ms  p95 {cells[f'b{batch}']['p95_ms']:8.2f} ms")
            if "fp32" in on_cpu and "int8" in on_cpu:
                top = max(batches)
                entry["int8_speedup_cpu"] = paired_speedup(on_cpu["fp32"], on_cpu["int8"], input_name, item, top,
                                                           2 * args.seconds, rng)
                print(f"{name}: onnxruntime-cpu INT8/FP32 throughput at b{top}, calls alternating: "
                      f"{entry['int8_speedup_cpu']:.2f}x" + (" (stand-in model)" if standin else ""))
            if "int8_agreement" in entry:
                print(f"{name}: INT8 agreement {json.dumps(entry['int8_agreement'])}")
            if args.json_out:  # after every model, so a long run keeps what it measured
                Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json_out).write_text(json.dumps(result, indent=1))
    return 0
