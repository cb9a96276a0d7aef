"""The face a track publishes when it ends, with `select.typical_of` above 1: the most typical of its best-scored faces.

The selection model tells an identifiable face from one that is not, but a track's identifiable faces all score
near 1, so the best-scored of them is not reliably the one the recognizer matches best. The most typical of the
`typical_of` best-scored faces is the one whose aligned 8x8 grey thumbnail (brightness and contrast normalised,
as edge.identity compares faces) correlates best with the others': it passes over a frame made unlike the person
by a blur, an occluder or a compression burst. It costs a few thumbnails per track. Off by default: on
`faceedge eval stream` it was no better on synthetic clips and cost one person of 25 on the real ones (decision 019).
"""

from __future__ import annotations

import numpy as np

from .cuts import thumbnail_signature
from .identity import FACE_THUMBNAIL
from .select import BestFace

# Below this many faces there is no majority to be typical of: the best-scored face stands.
MIN_PEERS = 3


def settle_on_typical(best: BestFace, min_score: float = 0.0) -> None:
    """Make the most typical of the track's leading faces (of the best face's kind, off or on the frame edge, and
    scoring at least `min_score`) its best face."""
    peers = [entry for entry in best.leaders if entry[0] == (not best.rejected) and entry[1] >= min_score]
    if len(peers) < MIN_PEERS:
        return
    signatures = np.stack([thumbnail_signature(candidate.aligned, FACE_THUMBNAIL) for _, _, candidate in peers])
    agreement = signatures @ signatures.T
    unfit, score, candidate = peers[int(np.argmax(agreement.sum(axis=1) - np.diag(agreement)))]
    best.keep(candidate, score, not unfit)
