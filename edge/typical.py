"""The face a track publishes when it ends: the most typical of its best-scored faces.

The selection model tells an identifiable face from one that is not, but among a track's
identifiable faces its scores sit near 1 and say little about which the recognizer matches
best: on `faceedge eval stream`, a face drawn at random from a track's 8 best-scored ones
matched the gallery better than the best-scored one. The most typical of them, the one whose
aligned 8x8 grey thumbnail (brightness and contrast normalised, as edge.identity compares faces)
correlates best with the others', avoids the passing blur, occluder or compression burst that
makes one frame unlike the person (decision 019). It costs a few thumbnails per track.
"""

from __future__ import annotations

import numpy as np

from .cuts import thumbnail_signature
from .identity import FACE_THUMBNAIL
from .select import BestFace

# Below this many faces there is no majority to be typical of: the best-scored face stands.
MIN_PEERS = 3


def settle_on_typical(best: BestFace) -> None:
    """Make the most typical of the track's leading faces (of the best face's kind: off or on the frame edge) its
    best face."""
    peers = [entry for entry in best.leaders if entry[0] == (not best.rejected)]
    if len(peers) < MIN_PEERS:
        return
    signatures = np.stack([thumbnail_signature(candidate.aligned, FACE_THUMBNAIL) for _, _, candidate in peers])
    agreement = signatures @ signatures.T
    unfit, score, candidate = peers[int(np.argmax(agreement.sum(axis=1) - np.diag(agreement)))]
    best.keep(candidate, score, not unfit)
