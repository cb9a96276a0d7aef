"""One track, one person: the recognizer checks that a track's faces stay the same identity.

The tracker follows landmarks, so it can hand a track to someone else: a face is lost and
another appears where it was, or two paths cross. Each track keeps a reference: the
recognizer's embedding of its verified best face. Only identifiable faces are embedded
(score >= `min_score`; for the selection scorer that is the probability that SFace
identifies the face), and a track has a check due once every `interval` of its frames, or
at once when the tracker matched it again after frames unseen (`resumed`: the face it lost
may be gone and someone else where it was). A due check embeds one face:

- after a resumption, the frame's candidate: the face that is maybe someone else;
- else the track's best, if it changed since it was last verified: so the published face
  is always one that agrees with the track;
- else the frame's candidate: an intruder whose faces never beat the best is found too.

A face whose cosine to the reference is below `min_cosine` is someone else, and the
pipeline splits the track there: the old part ends with its last verified best (an
unverified best that disagreed never stands for it) and the new part gets its own id.
The cost is one embedding per track per `interval` frames, plus one for each track's first
identifiable best and one per resumption. Between two checks a track can take in at most
`interval - 1` of an intruder's frames; they count as frames seen, never as its face.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Recognizer(Protocol):
    def embed(self, faces: list[np.ndarray]) -> np.ndarray: ...  # L2-normalised rows


@dataclass
class TrackIdentity:
    reference: np.ndarray | None = None  # embedding of the track's verified best face
    verified: tuple | None = None  # (candidate, score, rejected) of that face
    since_check: int = 0  # the track's frames since its last due check
    recheck: bool = False  # resumed after frames unseen: a check is due now


class IdentityCheck:
    def __init__(self, recognizer: Recognizer, min_cosine: float = 0.3, min_score: float = 0.5, interval: int = 16):
        self.recognizer = recognizer
        self.min_cosine, self.min_score, self.interval = min_cosine, min_score, interval

    def choose(self, track: TrackIdentity, best, candidate, score: float):
        """The face to embed for this frame of the track (its `BestFace` so far, this frame's
        candidate and score), or None; counts the track's frames between checks."""
        track.since_check += 1
        pending = (best is not None and best.candidate is not None and best.score >= self.min_score
                   and (track.verified is None or best.candidate is not track.verified[0]))
        if track.reference is None:
            return best.candidate if pending else None  # the first identifiable best becomes the reference
        if not (track.recheck or track.since_check >= self.interval):
            return None
        if pending and not track.recheck:
            chosen = best.candidate
        elif score >= self.min_score:
            chosen = candidate
        else:
            return None  # stays due until an identifiable face comes
        track.since_check, track.recheck = 0, False
        return chosen

    def embed(self, faces: list[np.ndarray]) -> np.ndarray:
        return self.recognizer.embed(faces)

    def same_person(self, track: TrackIdentity, embedding: np.ndarray) -> bool:
        """False only when the track has a reference and the embedding disagrees with it."""
        return track.reference is None or float(np.dot(track.reference, embedding)) >= self.min_cosine
