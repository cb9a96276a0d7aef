"""One track, one person: the recognizer checks that a track's faces stay the same identity.

The tracker follows landmarks, so it can hand a track to someone else: a face is lost and
another appears where it was, one person steps in front of another, two paths cross, or a cut
goes unnoticed. Each of these changes the face the track is offered from one frame to the next,
so a check is due when:

- the track's face changed: the offered face's aligned 8x8 grey thumbnail, normalised for
  brightness and contrast, has `1 - correlation >= face_change` with each of the track's last
  `FACE_HISTORY` offered faces (the shot-cut measure of edge/cuts.py, applied to the face; the
  background behind a face is much the same for whoever stands there, so colour tells people
  apart less well than structure). Against one previous face, a hand or another head passing
  over it fires twice, coming and going; against a few, once; against a dozen, a head that turns
  away and back fires only on a pose it has not shown for that long;
- optionally, the track's box jumped: a corner of the offered face's box missed where the track's last box, moving
  as it last moved, would be by at least `box_jump` of the box's longer side per frame. A face moves steadily, even
  a fast one; a face that takes the place of one it passes in front of arrives shifted at once, and at 8x8 two
  aligned faces of different people can look alike;
- optionally, every `interval` of the track's frames.

A due check embeds the frame's face once it is identifiable (score >= `min_score`; for the
selection scorer that is the probability that SFace identifies it); until then it stays due.
The track's reference is the recognizer's embedding of its best face, taken at its first check
(from the frames before the change), so without `interval` a track that never changes costs nothing. A face
whose cosine to the reference is below `min_cosine` is someone else, and so is, at the first check
after a split, a face nearer the ended part's reference than the new part's (the people of a
crossing swap back). The pipeline splits the track there: the old part ends with its best face
(re-checked first when it was taken after the reference, and replaced by the reference's face
when it disagrees), and the new part starts from the face that disagreed.

The embeddings may run on another thread (`submit`, the pipeline's identity thread): while a track's check
is in flight its offers are held, and the verdict puts them in the part they belong to (edge/stream_tracks.py).
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .cuts import dissimilarity, thumbnail_signature

FACE_THUMBNAIL = (8, 8)
FACE_HISTORY = 12


class Recognizer(Protocol):
    def _box_jumped(self, track: TrackIdentity, candidate) -> bool:
        """Whether the candidate's box missed where the track's motion would put it; notes the box and its motion."""
        box, frame = np.asarray(candidate.detection.bbox, np.float64), candidate.frame_index
        if track.last_box is None:
            track.last_box = (box, frame, np.zeros(4))
            return False
        previous, previous_frame, velocity = track.last_box
        track.last_box = (box, frame, (box - previous) / max(1, frame - previous_frame))
        return box_jump(previous, previous_frame, velocity, box, frame) >= self.box_jump

    def embed(self, faces: list[np.ndarray]) -> np.ndarray: ...  # L2-normalised rows


@dataclass
class TrackIdentity:
    reference: np.ndarray | None = None  # embedding of the track's verified face
    # The reference of the part that ended at the track's split, until the first check after it: the two people of
    # a crossing swap back, and a one-frame reference can be nearer the other than `min_cosine`.
    previous: np.ndarray | None = None
    verified: tuple | None = None  # (candidate, score, rejected) of that face
    signatures: list[np.ndarray] = field(default_factory=list)  # of its last FACE_HISTORY offered faces
    # (box, frame index, box velocity per frame) of its last offered face
    last_box: tuple[np.ndarray, int, np.ndarray] | None = None
    since_check: int = 0  # the track's frames since its last check
    recheck: bool = False  # a check is due: the face changed, or its box jumped
    pending: PendingCheck | None = None  # the check in flight
    held: list = field(default_factory=list)  # the offers that wait for its verdict, the checked one first


@dataclass
class Check:
    """The faces one check embeds: the track's best as its reference (first check only), then the frame's."""

    reference_face: object | None  # the best's candidate, when the track has no reference yet
    candidate: object


@dataclass
class PendingCheck:
    """A check whose faces are being embedded: where its reference's and its candidate's rows are in the job."""

    job: Future | None = None  # the embeddings of one batch of faces
    reference_at: int | None = None
    candidate_at: int = 0


def box_jump(previous: np.ndarray, previous_frame: int, velocity: np.ndarray, box: np.ndarray, frame: int) -> float:
    """How far `box` ([x1, y1, x2, y2]) lies from where `previous` moving at `velocity` (per frame) would be: the
    largest corner miss over the longer side of the larger box, per frame between them."""
    gap = max(1, frame - previous_frame)
    side = max(previous[2] - previous[0], previous[3] - previous[1], box[2] - box[0], box[3] - box[1], 1.0)
    return float(np.abs(box - (previous + velocity * gap)).max()) / side / gap


class IdentityCheck:
    """`submit(fn, *args) -> Future` (an executor's) embeds on another thread; None embeds at once."""

    def __init__(self, recognizer: Recognizer, min_cosine: float = 0.3, min_score: float = 0.5,
                 face_change: float = 0.4, interval: int | None = None,
                 submit: Callable[..., Future] | None = None, box_jump: float | None = None):
        self.recognizer = recognizer
        self.min_cosine, self.min_score = min_cosine, min_score
        self.face_change, self.interval, self.box_jump = face_change, interval, box_jump
        self.submit = submit

    def choose(self, track: TrackIdentity, best, candidate, score: float) -> Check | None:
        """What to embed for this frame of the track (its `BestFace` so far, this frame's candidate and
        score), or None; notes a change of face and counts the track's frames between checks."""
        track.since_check += 1
        signature = thumbnail_signature(candidate.aligned, FACE_THUMBNAIL)
        if track.signatures and min(dissimilarity(seen, signature) for seen in track.signatures) >= self.face_change:
            track.recheck = True
        track.signatures = [*track.signatures[1 - FACE_HISTORY:], signature]
        if self.box_jump is not None and self._box_jumped(track, candidate):
            track.recheck = True
        due = track.recheck or (self.interval is not None and track.since_check >= self.interval)
        if not due or score < self.min_score:
            return None  # a due check waits for an identifiable face
        track.since_check, track.recheck = 0, False
        reference_face = None
        if track.reference is None and best is not None and best.candidate is not None and best.score >= self.min_score:
            reference_face = best.candidate
        return Check(reference_face, candidate)

    def _box_jumped(self, track: TrackIdentity, candidate) -> bool:
        """Whether the candidate's box missed where the track's motion would put it; notes the box and its motion."""
        box, frame = np.asarray(candidate.detection.bbox, np.float64), candidate.frame_index
        if track.last_box is None:
            track.last_box = (box, frame, np.zeros(4))
            return False
        previous, previous_frame, velocity = track.last_box
        track.last_box = (box, frame, (box - previous) / max(1, frame - previous_frame))
        return box_jump(previous, previous_frame, velocity, box, frame) >= self.box_jump

    def embed(self, faces: list[np.ndarray]) -> np.ndarray:
        return self.recognizer.embed(faces)

    def embed_later(self, faces: list[np.ndarray]) -> Future:
        if self.submit is not None:
            return self.submit(self.embed, faces)
        done: Future = Future()
        done.set_result(self.embed(faces))
        return done

    def same_person(self, track: TrackIdentity, embedding: np.ndarray) -> bool:
        """False when the track has a reference and the embedding disagrees with it, or lies nearer the reference
        of the part that ended at the track's last split (`previous`) than the track's own."""
        if track.reference is None:
            return True
        own = float(np.dot(track.reference, embedding))
        if track.previous is not None and float(np.dot(track.previous, embedding)) > own:
            return False
        return own >= self.min_cosine
