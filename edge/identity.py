"""One track, one person: the recognizer checks that a track's faces stay the same identity.

The tracker follows landmarks, so it can hand a track to someone else: a face is lost and
another appears where it was, or two paths cross. Each track keeps a reference: the
recognizer's embedding of its best identifiable face. A candidate is embedded only when it
is identifiable (score >= `min_score`; for the selection scorer that is the probability that
SFace identifies the face) and either

- it would become the track's new best face: so the published face is always checked, or
- the track was matched again after frames without a match (the tracker says `resumed`):
  the face it lost may be gone and someone else where it was, or
- `interval` of the track's offers have passed since its last embedding: an intruder whose
  faces never beat the best would otherwise never be checked, and never published,

which bounds the cost by the new bests and resumptions plus one face per `interval` frames
per track. Between two checks a track can take in at most `interval - 1` of an intruder's
frames that do not beat its best: they count as frames seen, never as its published face.
A candidate whose cosine to the reference is below `min_cosine` is someone else: the
pipeline splits the track there (the old part is published, the new one gets its own id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Recognizer(Protocol):
    def embed(self, faces: list[np.ndarray]) -> np.ndarray: ...  # L2-normalised rows


@dataclass
class TrackIdentity:
    reference: np.ndarray | None = None  # embedding of the track's best identifiable face
    since_embedded: int = 0  # offers since the track's last embedding
    recheck: bool = False  # resumed after a gap: the next identifiable face is embedded


class IdentityCheck:
    def __init__(self, recognizer: Recognizer, min_cosine: float = 0.2, min_score: float = 0.5, interval: int = 8):
        self.recognizer = recognizer
        self.min_cosine, self.min_score, self.interval = min_cosine, min_score, interval

    def wants(self, track: TrackIdentity, score: float, would_be_best: bool) -> bool:
        """Whether this candidate of the track is embedded; counts the offers in between."""
        if score >= self.min_score and (would_be_best or track.reference is None or track.recheck
                                        or track.since_embedded + 1 >= self.interval):
            track.since_embedded, track.recheck = 0, False
            return True
        track.since_embedded += 1
        return False

    def embed(self, faces: list[np.ndarray]) -> np.ndarray:
        return self.recognizer.embed(faces)

    def same_person(self, track: TrackIdentity, embedding: np.ndarray) -> bool:
        """False only when the track has a reference and the embedding disagrees with it."""
        return track.reference is None or float(np.dot(track.reference, embedding)) >= self.min_cosine
