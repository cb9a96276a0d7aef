"""The field's quality-assessment protocol (ISO/IEC 29794-1 style): EDC at set thresholds, partial areas, intervals.

- Error-versus-Discard: the false non-match rate of the probes kept after discarding the lowest-scored
  fraction (a probe's comparison fails when its best similarity to another photo of its identity is
  below the decision threshold; the references are clean photos, so a pair's quality is the probe's).
- Decision thresholds: the recogniser's own, and the one giving FMR 1e-3 on impostor comparisons
  (every probe against every gallery photo of another identity) of the scored identities.
- Partial areas under the EDC up to 20 % and 30 % discarded.
- 95 % intervals from a bootstrap over identities: people are resampled with replacement and each
  figure recomputed on their probes and tracks (a person's probes are not independent of each other).
"""

from __future__ import annotations

import numpy as np

MAX_DISCARD = 0.3
DISCARD_STEPS = 31  # 0, 1, ..., 30 % discarded
PARTIAL_AREAS = (0.2, 0.3)
TARGET_FMR = 1e-3
INTERVAL = 0.95


def error_versus_discard(scores: np.ndarray, failures: np.ndarray, max_discard: float = MAX_DISCARD,
                         steps: int = DISCARD_STEPS, weights: np.ndarray | None = None,
                         order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(discard fractions, failure rate of the kept probes, area under the curve up to max_discard).

    The lowest-scored probes are discarded first; ties are broken by probe order (stable sort).
    `weights` (whole numbers) count a probe that many times, as a bootstrap resample does; `order`
    is the probes' stable ascending score order when the caller has it already.
    """
    order = np.argsort(scores, kind="stable") if order is None else order
    ranked = np.asarray(failures, float)[order]
    weight = np.ones(len(ranked)) if weights is None else np.asarray(weights, float)[order]
    # Failures among the first d units of weight, for any d: linear within each probe's run of units.
    units = np.concatenate([[0.0], np.cumsum(weight)])
    failed = np.concatenate([[0.0], np.cumsum(weight * ranked)])
    fractions = np.linspace(0.0, max_discard, steps)
    discarded = np.round(fractions * units[-1])
    rates = (failed[-1] - np.interp(discarded, units, failed)) / (units[-1] - discarded)
    return fractions, rates, float(np.trapezoid(rates, fractions))


def partial_area(fractions: np.ndarray, rates: np.ndarray, upto: float) -> float:
    """Area under the EDC from 0 to `upto` discarded (`upto` must be one of `fractions`)."""
    keep = fractions <= upto + 1e-9
    return float(np.trapezoid(rates[keep], fractions[keep]))


def best_of_track(scores: np.ndarray, correct: np.ndarray, tracks: list[np.ndarray]) -> float:
    """Fraction of tracks whose highest-scored view is identified correctly."""
    return float(np.mean(track_hits(scores, correct, tracks)))


def track_hits(scores: np.ndarray, correct: np.ndarray, tracks: list[np.ndarray]) -> np.ndarray:
    return np.array([bool(correct[t[np.argmax(scores[t])]]) for t in tracks])


def fmr_threshold(impostor_scores: np.ndarray, fmr: float = TARGET_FMR, total: int | None = None) -> float:
    """The lowest threshold whose false match rate (impostor scores >= it) is at most `fmr`.

    `impostor_scores` may be only the highest ones, as long as they hold the floor(fmr * total) + 1
    highest of all `total` impostor comparisons (`total` defaults to their number).
    """
    scores = np.sort(np.asarray(impostor_scores, np.float64))[::-1]
    total = len(scores) if total is None else total
    allowed = int(np.floor(fmr * total + 1e-9))  # false matches allowed
    if allowed >= total:
        return float("-inf")
    if allowed >= len(scores):
        raise ValueError(f"need the {allowed + 1} highest of {total} impostor scores, got {len(scores)}")
    # Just above the (allowed + 1)-th highest: it and everything tied with it are not matches.
    return float(np.nextafter(scores[allowed], np.inf))


def impostor_top(embeddings: np.ndarray, identities, gallery_embeddings: np.ndarray, gallery_identities,
                 similarity, fmr: float = TARGET_FMR, chunk: int = 2048) -> tuple[np.ndarray, int]:
    """(the highest impostor similarities, enough for `fmr_threshold` at `fmr`; the number of impostor pairs)."""
    identities = np.asarray(identities, dtype=object)
    gallery_identities = np.asarray(gallery_identities, dtype=object)
    names, per_name = np.unique(gallery_identities, return_counts=True)
    mates = dict(zip(names, per_name))
    total = int(sum(len(gallery_identities) - mates.get(i, 0) for i in identities))
    keep = int(np.floor(fmr * total + 1e-9)) + 1
    top = np.empty(0)
    for begin in range(0, len(embeddings), chunk):
        sims = similarity(embeddings[begin:begin + chunk], gallery_embeddings)
        impostor = sims[identities[begin:begin + chunk, None] != gallery_identities[None, :]]
        top = np.concatenate([top, impostor.astype(np.float64)])
        if len(top) > keep:
            top = np.partition(top, len(top) - keep)[len(top) - keep:]
    return top, total


def identity_resamples(identities, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(names, (resamples, len(names)) counts: how often each identity is drawn in each resample)."""
    names = np.unique(np.asarray(identities, dtype=object))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), (resamples, len(names)))
    counts = np.stack([np.bincount(d, minlength=len(names)) for d in draws])
    return names, counts


def interval(values: np.ndarray, level: float = INTERVAL) -> list[float]:
    tail = (1.0 - level) / 2 * 100
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def per_item_weights(item_identities, names: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(resamples, items): each item weighted by how often its identity was drawn."""
    index = np.searchsorted(names, np.asarray(item_identities, dtype=object))
    return counts[:, index]


def person_groups(identities: np.ndarray, group_size: int, rng: np.random.Generator,
                  shortest: int) -> list[np.ndarray]:
    """Each person's probes, shuffled by `rng` and cut into track-like groups of `group_size`; a person's last,
    shorter group is kept only if it has at least `shortest` faces."""
    groups = []
    for person in np.unique(identities):
        faces = rng.permutation(np.flatnonzero(identities == person))
        groups.extend(g for g in (faces[i:i + group_size] for i in range(0, len(faces), group_size))
                      if len(g) >= shortest)
    return groups


def track_groups(identities: np.ndarray, group_size: int, seed: int) -> list[np.ndarray]:
    """A fixed set of tracks to validate on: `person_groups` shuffled by `seed`, a last group of two faces or more
    kept."""
    return person_groups(identities, group_size, np.random.default_rng(seed), shortest=2)


def track_choice(scores: np.ndarray, genuine: np.ndarray, groups: list[np.ndarray], threshold: float) -> dict:
    """How well the top-scored face of each group serves the recogniser, against the group's best face.

    efficiency: the chosen face's genuine similarity over the group's best (groups whose best is above 0);
    recovered: of the groups whose best face reaches `threshold`, the share whose chosen face does too.
    """
    chosen = np.array([genuine[g[np.argmax(scores[g])]] for g in groups])
    best = np.array([genuine[g].max() for g in groups])
    positive, reachable = best > 0, best >= threshold
    return {"groups": len(groups),
            "median_efficiency": float(np.median(chosen[positive] / best[positive])),
            "mean_efficiency": float(np.mean(np.clip(chosen[positive], 0, None) / best[positive])),
            "recovered": float(np.mean(chosen[reachable] >= threshold)), "reachable": int(reachable.sum())}
