"""Calibrate one model to a QDQ INT8 ONNX, choosing the calibration method by agreement.

Data comes split by identity (see `dataset.split_sets`): the `fit` split calibrates, the
`choose` split picks among the candidates (entropy, and percentile at each configured value),
the `report` split gives the agreement figures that are published. The chosen QDQ ONNX is
written to `base.int8_model_path(float)`, with the report beside it as JSON.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from faceedge.edge.errors import ModelFileError
from faceedge.trt_engines.base import BackendRequest, BackendUnavailable, int8_model_path
from faceedge.trt_engines.int8_ranges import ranges_path
from faceedge.trt_engines.models import input_spec
from faceedge.trt_engines.plugins.onnxruntime_session import OnnxRuntimeBackend
from faceedge.trt_engines.model_registry import MODELS
from faceedge.trt_engines.tensorrt_qdq import tensorrt_qdq

from .dataset import Split
from .measures import MEASURES
from .quantize import quantize_candidates

log = logging.getLogger("faceedge.calibration")


def model_inputs(model: str, item: tuple[int, ...], split: Split) -> np.ndarray:
    """One split's data as `model` (per-item input shape `item`) gets it at run time."""
    spec = MODELS[model]
    return spec.prepare(MEASURES[spec.agreement].images(split, item), item)


def _rank(report: dict) -> tuple:
    """Higher is better: the figure the pipeline depends on first, then output fidelity."""
    if "best_face" in report:
        return (report["best_face"], report["rank_correlation"])
    if "recall_of_fp32" in report:
        return (report["recall_of_fp32"] + report["precision_vs_fp32"], -report["output_error"]["rel_l2"])
    return (-report["output_error"]["rel_l2"],)


def candidates_of(methods, percentiles) -> list[tuple[str, str, float]]:
    """(label, method, percentile): one candidate per method, one per percentile for `percentile`."""
    out = []
    for method in methods:
        for value in (percentiles if method == "percentile" else percentiles[:1]):
            out.append((f"percentile {value:g}" if method == "percentile" else method, method, value))
    return out


def calibrate_model(model: str, float_path: Path, splits: dict[str, Split],
                    methods=("entropy", "percentile"), percentiles=(99.999, 99.99), max_fit: int = 64,
                    threads: int = 0, leading_float: int = 1) -> dict:
    float_path = Path(float_path)
    measure = MEASURES[MODELS[model].agreement]
    input_name, item = input_spec(float_path, MODELS[model].shapes())
    fit = model_inputs(model, item, splits["fit"])[:max_fit]
    choose_inputs = model_inputs(model, item, splits["choose"])
    reference = OnnxRuntimeBackend(float_path, threads=threads)
    choose_reference = measure.outputs(reference, choose_inputs)
    settings = candidates_of(methods, tuple(percentiles))
    paths = {label: float_path.with_name(f"{float_path.stem}.{label.replace(' ', '-')}.int8.onnx")
             for label, _, _ in settings}
    quantize_candidates(float_path, input_name, measure.fit_batches(fit),
                        [(paths[label], method, percentile) for label, method, percentile in settings], leading_float)
    candidates = {}
    for label, out in paths.items():
        quantized = OnnxRuntimeBackend(out, threads=threads, precision="int8")
        candidates[label] = (out, measure.compare(choose_reference, measure.outputs(quantized, choose_inputs),
                                                  splits["choose"]))
        log.info("%s %s on the choose split: %s", model, label, candidates[label][1])
    best = max(candidates, key=lambda m: _rank(candidates[m][1]))
    target = int8_model_path(float_path)
    candidates[best][0].replace(target)
    if ranges_path(candidates[best][0]).is_file():
        ranges_path(candidates[best][0]).replace(ranges_path(target))
    report_inputs = model_inputs(model, item, splits["report"])
    report_reference = measure.outputs(reference, report_inputs)

    def report_of(path: Path) -> dict:
        test = measure.outputs(OnnxRuntimeBackend(path, threads=threads, precision="int8"), report_inputs)
        return measure.compare(report_reference, test, splits["report"])

    report = report_of(target)
    # TensorRT builds from a symmetric re-encoding of the same calibration: its grid, run here on CPU.
    tensorrt_form = report_of(tensorrt_qdq(target))
    result = {"model": model, "method": best, "qdq_onnx": str(target), "report_split": report,
              "tensorrt_form_report_split": tensorrt_form,
              "opencv_form_report_split": _opencv_form_report(model, float_path, report_inputs, report_reference,
                                                              splits["report"], threads),
              "choose_split": {m: rep for m, (_, rep) in candidates.items()},
              "fit_items": int(len(fit)), "leading_float_layers": leading_float,
              "groups": {name: len(split.groups) for name, split in splits.items()}}
    target.with_suffix(".json").write_text(json.dumps(result, indent=1))
    for method, (path, _) in candidates.items():
        if method != best:
            path.unlink(missing_ok=True)
            ranges_path(path).unlink(missing_ok=True)
    return result


def _opencv_form_report(model: str, float_path: Path, inputs: np.ndarray, reference, split: Split,
                        threads: int) -> dict | str:
    """The QOperator form of the same ranges, on OpenCV (the form it runs), against FP32; or why it cannot run."""
    from faceedge.trt_engines.plugins.opencv_cpu import OpenCvDnnBackend

    measure = MEASURES[MODELS[model].agreement]
    try:
        backend = OpenCvDnnBackend(BackendRequest(float_path, model=model).qoperator_onnx(), max(1, threads), "int8")
    except (BackendUnavailable, ModelFileError) as exc:  # OpenCV cannot read it; an older ORT kept no ranges
        return str(exc)
    return measure.compare(reference, measure.outputs(backend, inputs), split)


def calibrate_configured(model: str, float_path: Path, splits: dict[str, Split], calibration,
                         threads: int = 0) -> dict:
    """`calibrate_model` with the settings of the config's `inference.calibration` for this model."""
    return calibrate_model(model, float_path, splits, methods=tuple(calibration.methods),
                           percentiles=tuple(calibration.percentiles),
                           max_fit=calibration.max_fit_items_by_model.get(model, calibration.max_fit_items),
                           threads=threads, leading_float=calibration.leading_float_layers.get(model, 1))


def calibration_splits(calibration) -> dict[str, Split]:
    """fit/choose/report splits from the config's `inference.calibration` sources."""
    from faceedge.edge.detect import YuNetDetector
    from faceedge.edge.errors import ConfigError

    from .dataset import identity_groups, split_sets

    if not calibration.sources:
        raise ConfigError("INT8 calibration needs data: set inference.calibration.sources "
                          "(folders of face images or videos), or pass --calibration-source")
    missing = [s for s in calibration.sources if not Path(s).exists()]
    if missing:
        raise ConfigError(f"calibration source(s) not found: {missing}")
    groups, assign = identity_groups([Path(s) for s in calibration.sources], calibration.frames_per_source,
                                     calibration.identities, calibration.report_fraction)
    splits = split_sets(groups, YuNetDetector(), max_faces=calibration.max_tracks_per_split, assign=assign)
    empty = [name for name, split in splits.items() if not split.faces.tracks or not split.frames]
    if empty:
        raise ConfigError(f"calibration sources give no faces for split(s) {empty}: add more identities/videos")
    return splits
