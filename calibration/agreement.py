"""How far an INT8 model's outputs are from the FP32 model's, in the terms the pipeline cares about.

- output error: max and mean absolute difference, and relative L2 (||int8 - fp32|| / ||fp32||);
- score rank correlation: Spearman over every item's score (first output, first column);
- best face: fraction of tracks whose top-scored crop is the same under both models, with its
  95 % Wilson interval (a 60-track report cannot tell 0.95 from 0.99 apart), and what a flip costs:
  FP32's score of its own best crop minus its score of the crop INT8 picked, against FP32's margin
  between its best and second-best crop over all tracks (both in the model's output units);
- detector: fraction of FP32 detections the INT8 model reproduces (IoU >= 0.5), and vice versa.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest, spearmanr


def output_error(ref: list[np.ndarray], test: list[np.ndarray]) -> dict:
    diffs = [np.abs(r.astype(np.float64) - t) for r, t in zip(ref, test)]
    num = np.sqrt(sum(float((d ** 2).sum()) for d in diffs))
    den = np.sqrt(sum(float((r.astype(np.float64) ** 2).sum()) for r in ref))
    return {"max_abs": max(float(d.max()) for d in diffs),
            "mean_abs": float(np.mean([d.mean() for d in diffs])),
            "rel_l2": num / max(den, 1e-12)}


def item_scores(outputs: list[np.ndarray]) -> np.ndarray:
    first = outputs[0]
    return first.reshape(len(first), -1)[:, 0]


def best_face_kept(ref_scores: np.ndarray, test_scores: np.ndarray, tracks: list[list[int]]) -> list[bool]:
    """Per track of two or more crops: does the test model pick the reference model's best crop?"""
    return [bool(np.argmax(ref_scores[t]) == np.argmax(test_scores[t])) for t in tracks if len(t) > 1]


def flip_cost(ref_scores: np.ndarray, test_scores: np.ndarray, tracks: list[list[int]]) -> dict:
    """Reference-score gaps: of each flipped track (its best crop minus the test model's pick), and of every
    track's best over its second best, so that a flip reads as a near tie or as a real loss."""
    margins, flips = [], []
    for track in (np.asarray(t) for t in tracks if len(t) > 1):
        ref, picked = ref_scores[track], int(np.argmax(test_scores[track]))
        first, second = np.sort(ref)[::-1][:2]
        margins.append(float(first - second))
        if picked != int(np.argmax(ref)):
            flips.append(float(first - ref[picked]))
    report = {"fp32_margin_median": float(np.median(margins))} if margins else {}
    if flips:
        report.update(flip_fp32_gap_median=float(np.median(flips)), flip_fp32_gap_max=max(flips))
    return report


def wilson_interval(kept: int, total: int) -> list[float]:
    interval = binomtest(kept, total).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(interval.low), float(interval.high)]


def score_agreement(ref: list[np.ndarray], test: list[np.ndarray], tracks: list[list[int]] | None) -> dict:
    ref_scores, test_scores = item_scores(ref), item_scores(test)
    report = {"output_error": output_error(ref, test),
              "rank_correlation": float(spearmanr(ref_scores, test_scores).statistic),
              "items": int(len(ref_scores))}
    if tracks is not None:
        kept = best_face_kept(ref_scores, test_scores, tracks)
        report["tracks"] = len(kept)
        report["best_face"] = float("nan")
        if kept:
            report["best_face_kept"] = sum(kept)
            report["best_face"] = report["best_face_kept"] / len(kept)
            report["best_face_interval95"] = wilson_interval(report["best_face_kept"], len(kept))
            report.update(flip_cost(ref_scores, test_scores, tracks))
    return report


def embedding_agreement(ref: list[np.ndarray], test: list[np.ndarray]) -> dict:
    a, b = ref[0], test[0]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(min=1e-12)
    return {"output_error": output_error(ref, test), "mean_cosine": float(cos.mean()),
            "min_cosine": float(cos.min()), "items": int(len(a))}


def image_agreement(ref: list[np.ndarray], test: list[np.ndarray]) -> dict:
    a, b = ref[0].astype(np.float64), test[0]
    peak = max(float(a.max() - a.min()), 1e-12)
    mse = float(((a - b) ** 2).mean())
    return {"output_error": output_error(ref, test),
            "psnr_db": float(10 * np.log10(peak ** 2 / max(mse, 1e-20))), "items": int(len(a))}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((rb - lt).clip(min=0), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def detection_agreement(ref_dets: list[list], test_dets: list[list], ref: list[np.ndarray],
                        test: list[np.ndarray]) -> dict:
    """ref_dets/test_dets: per frame, lists of `Detection` from the FP32 and INT8 detector."""
    matched_ref = matched_test = total_ref = total_test = 0
    for r, t in zip(ref_dets, test_dets):
        total_ref, total_test = total_ref + len(r), total_test + len(t)
        if r and t:
            iou = _iou(np.array([d.bbox for d in r]), np.array([d.bbox for d in t]))
            matched_ref += int((iou.max(1) >= 0.5).sum())
            matched_test += int((iou.max(0) >= 0.5).sum())
    return {"output_error": output_error(ref, test),
            "recall_of_fp32": matched_ref / max(total_ref, 1), "precision_vs_fp32": matched_test / max(total_test, 1),
            "fp32_detections": total_ref, "int8_detections": total_test, "frames": len(ref_dets)}
