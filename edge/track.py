"""Tracking with norfair: the 5 landmarks of each face are the tracked points.

Distances are landmark displacements measured in face sizes, so one threshold works
for faces near and far. A track is reported (gets an id) after `initialization_delay`
hits and ends after `hit_counter_max` frames without a match. Each norfair detection carries its
face candidate as its `data`, so a matched track hands back the candidate itself.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import norfair
import numpy as np

from .select import Candidate

# Each tracker numbers its tracks from 1; its generation keeps keys unique when a stream's tracker is replaced
# (after a cut or a reconnect), so a key never names two tracks.
_generations = itertools.count()


def landmark_distance(detection: norfair.Detection, tracked: norfair.tracker.TrackedObject) -> float:
    """Mean landmark displacement divided by the face's box size."""
    face: Candidate = detection.data
    # Called for every detection-track pair of every frame: plain floats beat numpy on 5 points.
    displacement = sum(math.hypot(dx, dy) for dx, dy in (detection.points - tracked.estimate).tolist())
    return displacement / len(detection.points) / max(face.detection.size, 1.0)


@dataclass
class TrackUpdate:
    matched: list[tuple[object, Candidate]]  # (track key, candidate) for tracks seen in this frame
    ended: list[object]  # keys of tracks dropped by the tracker in this frame
    confirmed: set  # keys of tracks past their initialisation delay (live or just ended)
    resumed: set  # keys matched in this frame after at least one frame unmatched: maybe someone else now


class FaceTracker:
    """Wraps one norfair.Tracker per stream; keys are stable from a track's first sighting."""

    def __init__(self, distance_threshold: float = 0.7, hit_counter_max: int = 10, initialization_delay: int = 2,
                 point_score_threshold: float = 0.0):
        self.tracker = norfair.Tracker(
            distance_function=landmark_distance,
            distance_threshold=distance_threshold,
            hit_counter_max=hit_counter_max,
            initialization_delay=initialization_delay,
            detection_threshold=point_score_threshold,
        )
        self._generation = next(_generations)
        self._alive: dict[tuple[int, int], norfair.tracker.TrackedObject] = {}
        self._matched: set = set()  # keys matched in the previous update

    def update(self, candidates: list[Candidate], period: int = 1) -> TrackUpdate:
        norfair_dets = [
            norfair.Detection(points=c.detection.landmarks.astype(np.float64), scores=np.full(5, c.detection.score),
                              data=c)
            for c in candidates
        ]
        self.tracker.update(detections=norfair_dets, period=period)
        seen = set(norfair_dets)  # hashed by identity: this frame's detections
        matched, confirmed = [], set()
        alive_now = {}
        for obj in self.tracker.tracked_objects:
            key = (self._generation, obj.initializing_id)
            alive_now[key] = obj
            if obj.id is not None:
                confirmed.add(key)
            if obj.last_detection in seen:
                matched.append((key, obj.last_detection.data))
        ended = [key for key in self._alive if key not in alive_now]
        confirmed.update(key for key in ended if self._alive[key].id is not None)
        matched_keys = {key for key, _ in matched}
        resumed = {key for key in matched_keys if key in self._alive and key not in self._matched}
        self._alive, self._matched = alive_now, matched_keys
        return TrackUpdate(matched, ended, confirmed, resumed)

    def live(self) -> dict:
        """Keys of live tracks -> whether each is confirmed."""
        return {key: obj.id is not None for key, obj in self._alive.items()}
