"""Automatic quality grading of the training pool (the GAN-graded quality patent, step 103).

Levels are 0-based indices: 0 = level I (real faces), 1..5 = levels II..VI, worse as the
index grows. The patent gives three rules for the generated sets; each one returns a level per
generated sample:

- `grade_by_iteration`: later generator checkpoints get better levels;
- `grade_by_frechet`: the Fréchet distance between each checkpoint's set and the real set,
  checkpoints merged into five groups "by the distribution of the distances" (cut at the four
  widest gaps between sorted distances); smaller distance, better level. No Inception
  weights are available, so features are the bundled SFace recognizer's embeddings;
- `grade_by_mse`: each sample's mean squared error to its nearest real image, split into five
  equal-count groups; lower error, better level.

A second source, degraded real faces, is graded by degradation strength (`grade_by_strength`).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

FAKE_LEVELS = 5  # levels II..VI
RULES = ("iteration", "frechet", "mse")


def _rank_bins(order_key: np.ndarray, groups: int = FAKE_LEVELS) -> np.ndarray:
    """Split items into `groups` equal-count bins by ascending key; bin 0 = smallest key."""
    ranks = np.argsort(np.argsort(order_key, kind="stable"), kind="stable")
    return (ranks * groups // len(order_key)).astype(np.int64)


def _gap_groups(values: np.ndarray, groups: int = FAKE_LEVELS) -> np.ndarray:
    """Group 1-D values by cutting the sorted sequence at its `groups - 1` widest gaps; group 0 = smallest."""
    order = np.argsort(values, kind="stable")
    gaps = np.diff(values[order])
    cuts = np.sort(np.argsort(gaps, kind="stable")[::-1][: min(groups, len(values)) - 1])
    sorted_group = np.zeros(len(values), dtype=np.int64)
    for cut in cuts:
        sorted_group[cut + 1:] += 1
    group = np.empty_like(sorted_group)
    group[order] = sorted_group
    return group


def grade_by_iteration(iterations: np.ndarray) -> np.ndarray:
    """Per-sample checkpoint iteration -> level index 1..5; the latest checkpoints get level II (1)."""
    checkpoints, per_sample = np.unique(iterations, return_inverse=True)
    checkpoint_bin = _rank_bins(-checkpoints.astype(np.float64))  # bin 0 = latest
    return 1 + checkpoint_bin[per_sample]


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as the FID reference code does
        offset = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def grade_by_frechet(real_features: np.ndarray, features: np.ndarray, iterations: np.ndarray) -> tuple[np.ndarray, dict]:
    """Level index 1..5 per sample from its checkpoint set's Fréchet distance to the real set.

    Returns the levels and {iteration: distance} for the record.
    """
    checkpoints = np.unique(iterations)
    distances = np.array([frechet_distance(real_features, features[iterations == it]) for it in checkpoints])
    checkpoint_group = _gap_groups(distances)
    lookup = dict(zip(checkpoints.tolist(), checkpoint_group.tolist()))
    levels = 1 + np.array([lookup[it] for it in iterations.tolist()], dtype=np.int64)
    return levels, dict(zip(checkpoints.tolist(), distances.tolist()))


def nearest_real_mse(real: np.ndarray, fakes: np.ndarray) -> np.ndarray:
    """Per fake image, the mean squared error to the closest real image (same shape, any range)."""
    real_flat = real.reshape(len(real), -1).astype(np.float64)
    fake_flat = fakes.reshape(len(fakes), -1).astype(np.float64)
    squared = (fake_flat ** 2).sum(1)[:, None] - 2 * fake_flat @ real_flat.T + (real_flat ** 2).sum(1)[None, :]
    return np.maximum(squared.min(axis=1), 0.0) / real_flat.shape[1]


def grade_by_mse(real: np.ndarray, fakes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level index 1..5 per fake from its nearest-real MSE (equal-count bins); also returns the MSEs."""
    errors = nearest_real_mse(real, fakes)
    return 1 + _rank_bins(errors), errors


def grade_by_strength(strength: np.ndarray) -> np.ndarray:
    """Degradation strength in [0, 1] -> level index: 0 (I) for none, else 1..5 in equal-width bins."""
    strength = np.asarray(strength, dtype=np.float64)
    binned = 1 + np.minimum((strength * FAKE_LEVELS).astype(np.int64), FAKE_LEVELS - 1)
    return np.where(strength <= 0.0, 0, binned)
