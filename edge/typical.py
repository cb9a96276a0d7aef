"""The face a track publishes when it ends: the best-scored, or by one of two rules among its best-scored faces.

With `select.typical_of` above 1, the most typical of them.

The selection model tells an identifiable face from one that is not, but a track's identifiable faces all score
near 1, so the best-scored of them is not reliably the one the recognizer matches best. The most typical of the
`typical_of` best-scored faces is the one whose aligned 8x8 grey thumbnail (brightness and contrast normalised,
as edge.identity compares faces) correlates best with the others': it passes over a frame made unlike the person
by a blur, an occluder or a compression burst. It costs a few thumbnails per track. Off by default: on
`faceedge eval stream` it was no better on synthetic clips and cost one person of 25 on the real ones (decision 019).

With `select.largest_within_logit` set, the largest face (box side in source pixels) of those whose score's logit
is within that of the best one's: the scorer says they are all about as identifiable, and the biggest carries the
most detail.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit

from .cuts import thumbnail_signature
from .identity import FACE_THUMBNAIL
from .select import BestFace

# Below this many faces there is no majority to be typical of: the best-scored face stands.
MIN_PEERS = 3
# Best-scored faces a track keeps for `largest_within_logit` to choose among.
NEAR_BEST_LEADERS = 16
# A probability of exactly 0 or 1 has an infinite logit; scores are clipped this far inside.
SCORE_EPSILON = 1e-15


def leaders_needed(typical_of: int, largest_within_logit: float | None) -> int:
    """How many best-scored faces a track must keep for the configured end choice."""
    return NEAR_BEST_LEADERS if largest_within_logit is not None else typical_of


def settle_on_end_choice(best: BestFace, typical_of: int, largest_within_logit: float | None,
                         min_score: float = 0.0) -> None:
    """Apply the configured rule (none: the best-scored face stands)."""
    if largest_within_logit is not None:
        settle_on_largest_near_best(best, largest_within_logit, min_score)
    elif typical_of > 1:
        settle_on_typical(best, min_score)


def _peers(best: BestFace, min_score: float) -> list:
    return [entry for entry in best.leaders if entry[0] == (not best.rejected) and entry[1] >= min_score]


def settle_on_largest_near_best(best: BestFace, within_logit: float, min_score: float = 0.0) -> None:
    """Make the largest of the track's leading faces whose score's logit is within `within_logit` of the best's (of
    the best face's kind and scoring at least `min_score`) its best face."""
    peers = _peers(best, min_score)
    if not peers:
        return
    logits = logit(np.clip([score for _, score, _ in peers], SCORE_EPSILON, 1 - SCORE_EPSILON))
    near = [entry for entry, value in zip(peers, logits) if value >= logits[0] - within_logit]
    fit, score, candidate = max(near, key=lambda entry: entry[2].detection.size)
    best.keep(candidate, score, not fit)


def settle_on_typical(best: BestFace, min_score: float = 0.0) -> None:
    """Make the most typical of the track's leading faces (of the best face's kind, off or on the frame edge, and
    scoring at least `min_score`) its best face."""
    peers = _peers(best, min_score)
    if len(peers) < MIN_PEERS:
        return
    signatures = np.stack([thumbnail_signature(candidate.aligned, FACE_THUMBNAIL) for _, _, candidate in peers])
    agreement = signatures @ signatures.T
    unfit, score, candidate = peers[int(np.argmax(agreement.sum(axis=1) - np.diag(agreement)))]
    best.keep(candidate, score, not unfit)
