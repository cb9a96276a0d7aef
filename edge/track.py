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


def mean_displacement(points: np.ndarray, reference: np.ndarray) -> float:
    # Called for every detection-track pair of every frame: plain floats beat numpy on 5 points.
    return sum(math.hypot(dx, dy) for dx, dy in (points - reference).tolist()) / len(points)


@dataclass
class Sighting:
    """A track's last matched landmarks, its frame, and its landmark velocity per frame from the sighting before."""

    points: np.ndarray
    frame_index: int
    velocity: np.ndarray | None = None


@dataclass
class TrackUpdate:
    matched: list[tuple[object, Candidate]]  # (track key, candidate) for tracks seen in this frame
    ended: list[object]  # keys of tracks dropped by the tracker in this frame
    confirmed: set  # keys of tracks past their initialisation delay (live or just ended)


class FaceTracker:
    """Wraps one norfair.Tracker per stream; keys are stable from a track's first sighting."""

    def __init__(self, distance_threshold: float = 0.7, hit_counter_max: int = 10, initialization_delay: int = 2,
                 point_score_threshold: float = 0.0):
        self.tracker = norfair.Tracker(
            distance_function=self.distance,
            distance_threshold=distance_threshold,
            hit_counter_max=hit_counter_max,
            initialization_delay=initialization_delay,
            detection_threshold=point_score_threshold,
        )
        self._generation = next(_generations)
        self._alive: dict[tuple[int, int], norfair.tracker.TrackedObject] = {}
        self._sightings: dict[int, Sighting] = {}  # by norfair's initializing_id

    def distance(self, detection: norfair.Detection, tracked: norfair.tracker.TrackedObject) -> float:
        """Mean landmark displacement, in face sizes, from the nearer of two predictions.

        One is norfair's Kalman estimate. Its velocity takes several sightings to settle, and a track has no
        velocity at all on its first sightings, so with detection on every third frame a face crossing the
        frame moves farther than the threshold between two detections: each sighting would start a track
        that never confirms, or a young one would be lost. The other extrapolates the track's last two
        sightings to this frame; after a single sighting it holds the face to the motion per frame allowed
        when every frame is detected.
        """
        face: Candidate = detection.data
        size = max(face.detection.size, 1.0)
        distance = mean_displacement(detection.points, tracked.estimate) / size
        last = self._sightings.get(tracked.initializing_id)
        if last is not None:
            gap = max(face.frame_index - last.frame_index, 1)
            if last.velocity is None:
                distance = min(distance, mean_displacement(detection.points, last.points) / size / gap)
            else:
                distance = min(distance, mean_displacement(detection.points, last.points + gap * last.velocity) / size)
        return distance

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
        self._remember_sightings(matched)
        ended = [key for key in self._alive if key not in alive_now]
        confirmed.update(key for key in ended if self._alive[key].id is not None)
        self._alive = alive_now
        return TrackUpdate(matched, ended, confirmed)

    def _remember_sightings(self, matched: list[tuple[object, Candidate]]) -> None:
        sightings = {}
        for (_, track), candidate in matched:
            points = candidate.detection.landmarks.astype(np.float64)
            previous = self._sightings.get(track)
            velocity = None if previous is None else (points - previous.points) / max(
                candidate.frame_index - previous.frame_index, 1)
            sightings[track] = Sighting(points, candidate.frame_index, velocity)
        # A track unmatched in this frame keeps its last sighting; a dropped one is forgotten.
        alive = {obj.initializing_id for obj in self.tracker.tracked_objects}
        self._sightings = {track: sighting for track, sighting in self._sightings.items() if track in alive}
        self._sightings.update(sightings)

    def live(self) -> dict:
        """Keys of live tracks -> whether each is confirmed."""
        return {key: obj.id is not None for key, obj in self._alive.items()}
