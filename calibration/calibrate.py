"""Calibrate one model to a QDQ INT8 ONNX, choosing the calibration method by agreement.

Data comes split by identity (see `dataset.split_sets`): the `fit` split calibrates, the
`choose` split picks among the candidates (entropy, and percentile at each configured value),
the `report` split gives the agreement figures that are published. The chosen QDQ ONNX is
written to `backends.int8_model_path(float)`, with the report beside it as JSON.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from trt_engines.backends import OnnxRuntimeBackend, int8_model_path
from trt_engines.models import MODELS, input_spec
from trt_engines.tensorrt_backend import tensorrt_qdq

from . import agreement
from .dataset import Split
from .feeds import face_inputs, frame_batch
from .quantize import quantize_candidates

log = logging.getLogger("faceedge.calibration")


def model_inputs(model: str, item: tuple[int, ...], split: Split) -> np.ndarray:
    """One split's data as `model` (per-item input shape `item`) gets it at run time."""
    if model == "detector":
        return frame_batch(split.frames, item)
    return face_inputs(model, split.faces.crops, item)


def run_batched(backend, inputs: np.ndarray, batch: int = 32) -> list[np.ndarray]:
    name = backend.input_names[0]
    parts = [backend.run({name: inputs[i:i + batch]}) for i in range(0, len(inputs), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def compare(model: str, ref_backend, test_backend, split: Split, inputs: np.ndarray) -> dict:
    """Agreement of `test_backend` with `ref_backend` on one split's data."""
    if model == "detector":
        from edge.detect import YuNetDetector

        ref_det, test_det = YuNetDetector(backend=ref_backend), YuNetDetector(backend=test_backend)
        ref_out, test_out, ref_dets, test_dets = [], [], [], []
        for frame in inputs:
            blob = frame[None]
            r, t = ref_backend.run({ref_det.input_name: blob}), test_backend.run({test_det.input_name: blob})
            ref_out.append(np.concatenate([o.ravel() for o in r[:6]]))  # cls and obj maps
            test_out.append(np.concatenate([o.ravel() for o in t[:6]]))
            ref_dets.append(ref_det.decode(r, *blob.shape[2:]))
            test_dets.append(test_det.decode(t, *blob.shape[2:]))
        return agreement.detection_agreement(ref_dets, test_dets, ref_out, test_out)
    ref, test = run_batched(ref_backend, inputs), run_batched(test_backend, inputs)
    if model in agreement.SCORING:
        return agreement.score_agreement(ref, test, split.faces.tracks)
    if model == "recognizer":
        return agreement.embedding_agreement(ref, test)
    if model == "sr":
        return agreement.image_agreement(ref, test)
    return agreement.score_agreement(ref, test, None)


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
    input_name, item = input_spec(float_path, MODELS.get(model))
    fit = model_inputs(model, item, splits["fit"])[:max_fit]
    # Detector frames keep one shape per batch; face crops calibrate in batches of 16.
    fit_batches = [fit[i:i + 1] for i in range(len(fit))] if model == "detector" else \
        [fit[i:i + 16] for i in range(0, len(fit), 16)]
    choose_inputs = model_inputs(model, item, splits["choose"])
    reference = OnnxRuntimeBackend(float_path, threads=threads)
    settings = candidates_of(methods, tuple(percentiles))
    paths = {label: float_path.with_name(f"{float_path.stem}.{label.replace(' ', '-')}.int8.onnx")
             for label, _, _ in settings}
    quantize_candidates(float_path, input_name, fit_batches,
                        [(paths[label], method, percentile) for label, method, percentile in settings], leading_float)
    candidates = {}
    for label, out in paths.items():
        quantized = OnnxRuntimeBackend(out, threads=threads, precision="int8")
        candidates[label] = (out, compare(model, reference, quantized, splits["choose"], choose_inputs))
        log.info("%s %s on the choose split: %s", model, label, candidates[label][1])
    best = max(candidates, key=lambda m: _rank(candidates[m][1]))
    target = int8_model_path(float_path)
    candidates[best][0].replace(target)
    report_inputs = model_inputs(model, item, splits["report"])
    report = compare(model, reference, OnnxRuntimeBackend(target, threads=threads, precision="int8"),
                     splits["report"], report_inputs)
    # TensorRT builds from a symmetric re-encoding of the same calibration: its grid, run here on CPU.
    tensorrt_form = compare(model, reference, OnnxRuntimeBackend(tensorrt_qdq(target), threads=threads,
                                                                 precision="int8"), splits["report"], report_inputs)
    result = {"model": model, "method": best, "qdq_onnx": str(target), "report_split": report,
              "tensorrt_form_report_split": tensorrt_form,
              "choose_split": {m: rep for m, (_, rep) in candidates.items()},
              "fit_items": int(len(fit)), "leading_float_layers": leading_float}
    target.with_suffix(".json").write_text(json.dumps(result, indent=1))
    for method, (path, _) in candidates.items():
        if method != best:
            path.unlink(missing_ok=True)
    return result


def calibrate_configured(model: str, float_path: Path, splits: dict[str, Split], calibration,
                         threads: int = 0) -> dict:
    """`calibrate_model` with the settings of the config's `inference.calibration` for this model."""
    return calibrate_model(model, float_path, splits, methods=tuple(calibration.methods),
                           percentiles=tuple(calibration.percentiles),
                           max_fit=calibration.max_fit_items_by_model.get(model, calibration.max_fit_items),
                           threads=threads, leading_float=calibration.leading_float_layers.get(model, 1))


def calibration_splits(calibration) -> dict[str, Split]:
    """fit/choose/report splits from the config's `inference.calibration` sources."""
    from edge.detect import YuNetDetector
    from edge.errors import ConfigError

    from .dataset import grouped_frames, split_sets

    if not calibration.sources:
        raise ConfigError("INT8 calibration needs data: set inference.calibration.sources "
                          "(folders of face images or videos), or pass --calibration-source")
    missing = [s for s in calibration.sources if not Path(s).exists()]
    if missing:
        raise ConfigError(f"calibration source(s) not found: {missing}")
    groups = grouped_frames([Path(s) for s in calibration.sources], calibration.frames_per_source)
    splits = split_sets(groups, YuNetDetector(), max_faces=calibration.max_tracks_per_split)
    empty = [name for name, split in splits.items() if not split.faces.tracks or not split.frames]
    if empty:
        raise ConfigError(f"calibration sources give no faces for split(s) {empty}: add more identities/videos")
    return splits
