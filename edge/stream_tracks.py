"""One stream's tracks, from first sighting to published face; no threads, no queues.

Per track key (stable from the track's first sighting, see edge.track) a stream keeps the track's
best face so far (`select.BestFace`), its identity state (`identity.TrackIdentity`, when the identity
check is on) and, once the tracker confirms the track, its published track id: 1, 2, ... per stream.

A track ends when the tracker drops it, when the stream finishes, at a shot cut or a gap in the video
(every track of the stream ends and a new tracker starts from nothing), or when the identity check
finds someone else in it (a split: the part so far ends, the track goes on under a new id). An ended
confirmed track is published with its best face as the event the publish policy names, unless that
best is below `select.min_score` (counted instead); the face it ends with is the most typical of its
`select.typical_of` best-scored ones (edge/typical.py); live confirmed tracks publish early and periodic
messages as the policy says (edge/publish_policy.py). Every message is made by
`face_message.face_message` and handed to `publish`.

With the identity check on, a track whose check is in flight (its embeddings may run on another thread)
holds the offers it gets until the verdict; they are then taken, and the observer sees them, in order, in
the part the verdict puts them in. A track that ends waits for its verdict first.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from .config import Config
from .cuts import CutDetector
from .face_message import OutgoingFace, face_message
from .identity import IdentityCheck, PendingCheck, TrackIdentity
from .publish_policy import PublishPolicy
from .select import BestFace, Candidate, Scorer
from .source import FramePacket
from .track import FaceTracker
from .typical import settle_on_typical

if TYPE_CHECKING:  # metrics are an operation: stages are handed one, never import it
    from .metrics import Metrics


class CandidateObserver(Protocol):
    def offered(self, stream: str, track_key: object, track_id: int | None, candidate: Candidate,
                score: float) -> None:
        """A candidate was offered to a track: `track_id` is the published id once confirmed, else None;
        `track_key` is stable from the track's first sighting."""


@dataclass
class Offer:
    """A face the tracker matched to a track in one frame, and what the scorer made of it."""

    tracks: StreamTracks
    key: object
    candidate: Candidate
    wall: float  # the frame's
    score: float = 0.0
    rejected: bool = False  # touches the frame edge


class StreamTracks:
    def __init__(self, stream: str, config: Config, metrics: Metrics, scorer: Scorer, instance: str,
                 publish: Callable[[OutgoingFace], None], identity: IdentityCheck | None = None,
                 observer: CandidateObserver | None = None):
        self.stream = stream
        self.identity, self.observer = identity, observer
        self.settings = config.track
        self.policy = PublishPolicy.from_config(config)
        self.metrics = metrics
        self.scorer, self.instance = scorer, instance  # named in every message
        self.publish = publish
        self.typical_of = config.select.typical_of
        threshold = config.track.cut_threshold
        self.cuts = None if threshold is None else CutDetector(threshold)
        self.tracker = self._new_tracker()
        self.best: dict[object, BestFace] = {}
        self.identities: dict[object, TrackIdentity] = {}
        self.public_ids: dict[object, int] = {}
        self.next_track_id = 1
        self.last_index: int | None = None  # of the last frame tracked: the gap since is norfair's period

    def _new_tracker(self) -> FaceTracker:
        t = self.settings
        return FaceTracker(t.distance_threshold, t.hit_counter_max, t.initialization_delay, t.point_score_threshold)

    # -- what the source says ----------------------------------------------------------------------

    def disconnected(self) -> None:
        """A gap in the video: tracks cannot continue across it, so each ends with its best face."""
        self.restart()
        if self.cuts is not None:
            self.cuts.reset()

    def end_all(self) -> None:
        """The stream finished or the pipeline stops: every track ends with its best face."""
        self.end(self._keys())

    # -- one frame ---------------------------------------------------------------------------------

    def track(self, packet: FramePacket, faces: list[Candidate]) -> list[Offer]:
        """The frame's faces through the cut check and the tracker: the offers of the faces matched to tracks;
        the tracks the tracker dropped end."""
        if self.cuts is not None and self.cuts.is_cut(packet.image):
            # A new shot: whoever is where a face was is not that face.
            self.metrics.scene_cuts.labels(self.stream).inc()
            self.restart()
        update = self.tracker.update(faces, period=self._period(packet.index))
        offers = [Offer(self, key, candidate, packet.wall) for key, candidate in update.matched]
        for key in update.confirmed:
            if key not in self.public_ids:
                self.public_ids[key] = self._new_track_id()
        self.end(update.ended)
        return offers

    def take(self, offer: Offer) -> None:
        """Count the scored offer in its track's best face (the observer sees it then)."""
        best = self.best.setdefault(offer.key, BestFace(leading=self.typical_of))
        best.offer(offer.candidate, offer.score, offer.rejected, offer.wall)
        if self.observer is not None:
            self.observer.offered(self.stream, offer.key, self.public_id(offer.key), offer.candidate, offer.score)

    def publish_live(self, wall: float) -> None:
        """Early and periodic messages of the live confirmed tracks, at the frame decoded at `wall`."""
        for key, track_id in self.public_ids.items():
            best = self.best.get(key)
            event = None if best is None else self.policy.live_event(best, wall)
            if event is not None:
                best.published(wall, event)
                self._publish(track_id, best, event)

    def public_id(self, key) -> int | None:
        """The track's published id; None until the tracker confirms it."""
        return self.public_ids.get(key)

    def live_count(self) -> int:
        """Confirmed tracks the tracker holds."""
        return sum(self.tracker.live().values())

    def _period(self, index: int) -> int:
        """Frames since the stream's last tracked frame (skipped or dropped in between), norfair's period.
        Capped at initialization_delay: norfair starts a track's hit counter at the period, so a longer one
        would confirm every detection, a spurious one too, on sight."""
        gap = 1 if self.last_index is None else index - self.last_index
        self.last_index = index
        return max(1, min(gap, self.settings.initialization_delay))

    # -- ending ------------------------------------------------------------------------------------

    def end(self, keys) -> None:
        for key in keys:
            self.settle(key, wait=True)  # its held offers are its own, or a new part's
            self.identities.pop(key, None)
            best = self.best.pop(key, None)
            track_id = self.public_ids.pop(key, None)
            if best is None or best.candidate is None or track_id is None:
                continue  # never confirmed: a spurious detection, not a face to publish
            self.metrics.tracks_ended.labels(self.stream).inc()
            if best.score < self.policy.min_score:
                self.metrics.tracks_below_min_score.labels(self.stream).inc()
                continue
            settle_on_typical(best, self.policy.min_score)
            event = self.policy.end_event(best)
            if event is not None:
                self._publish(track_id, best, event)

    def restart(self) -> None:
        """End every track with its best face; a new tracker starts from nothing."""
        self.end(self._keys())
        self.public_ids.clear()  # keys never offered a face: nothing to publish
        self.identities.clear()
        self.tracker = self._new_tracker()
        self.last_index = None

    def split(self, key) -> None:
        """End the track's part so far (published as any ended track) and go on under a new published id."""
        self.metrics.track_splits.labels(self.stream).inc()
        confirmed = key in self.public_ids
        self.end([key])
        if confirmed:
            self.public_ids[key] = self._new_track_id()

    def _keys(self) -> list:
        """Every track with a best face or a check in flight."""
        return list(dict.fromkeys([*self.best, *self.identities]))

    def _new_track_id(self) -> int:
        track_id, self.next_track_id = self.next_track_id, self.next_track_id + 1
        return track_id

    def _publish(self, track_id: int, best: BestFace, event: str) -> None:
        self.publish(face_message(best, event, stream=self.stream, track_id=track_id, instance=self.instance,
                                  scorer=self.scorer))


    # -- the identity check (edge/identity.py) ---------------------------------------------------------

    def settle(self, key, wait: bool = False) -> None:
        """Apply the verdict of the track's check in flight, if it is back (or `wait` for it, or the track holds
        more than MAX_HELD offers): a disagreeing face splits the track there; then the held offers are taken,
        the checked one first, the rest offered again (they may start the next check)."""
        track = self.identities.get(key)
        while track is not None and track.pending is not None and (
                wait or track.pending.job.done() or len(track.held) > MAX_HELD):
            pending, (offer, *rest) = track.pending, track.held
            track.pending, track.held = None, []
            embeddings = pending.job.result()
            best = self.best.get(key)
            if pending.reference_at is not None:
                track.reference, track.verified = embeddings[pending.reference_at], (best.candidate, best.score,
                                                                                     best.rejected)
            embedding = embeddings[pending.candidate_at]
            if track.reference is None:
                track.reference, track.verified = embedding, (offer.candidate, offer.score, offer.rejected)
            elif not self.identity.same_person(track, embedding):
                self._split_for(offer, track, best, embedding)
            else:
                track.previous = None
            self.take(offer)
            check_identities(self.identity, rest)
            track = self.identities.get(key)

    def _split_for(self, offer: Offer, track: TrackIdentity, best: BestFace | None, embedding) -> None:
        """Someone else from `offer` on: the part so far ends with a face of its own person, the new part starts
        with `offer`'s face as its reference."""
        if best is not None and best.candidate is not None and best.candidate is not track.verified[0]:
            # A best taken after the reference may already be the other person's: it must not stand for the old part.
            if not self.identity.same_person(track, _embed(self.identity, [(offer, best.candidate)])[0]):
                best.keep(*track.verified)
        self.split(offer.key)
        self.identities[offer.key] = TrackIdentity(reference=embedding, previous=track.reference,
                                                   verified=(offer.candidate, offer.score, offer.rejected),
                                                   signatures=track.signatures[-1:], last_box=track.last_box)


# Offers a track holds while its check is in flight; past it the worker waits for the verdict (an embedding takes
# 20-35 ms on a CPU core, a few frames' work of the worker's).
MAX_HELD = 8


def check_identities(identity: IdentityCheck, offers: list[Offer]) -> None:
    """Take the offers, through the identity check: a track whose check is in flight holds its offer; a due check
    (edge/identity.py) holds it too, and every due check of the offers, of every stream, is one embedding job.
    Verdicts already back are applied before returning."""
    due = []
    for offer in offers:
        track = offer.tracks.identities.setdefault(offer.key, TrackIdentity())
        if track.pending is not None:
            track.held.append(offer)
            continue
        best = offer.tracks.best.get(offer.key)
        check = identity.choose(track, best, offer.candidate, offer.score)
        if check is None:
            offer.tracks.take(offer)
            continue
        track.pending, track.held = PendingCheck(), [offer]
        due.append((offer, track.pending, check))
    faces = []
    for offer, pending, check in due:
        if check.reference_face is not None:
            pending.reference_at = len(faces)
            faces.append((offer, check.reference_face))
        pending.candidate_at = len(faces)
        faces.append((offer, check.candidate))
    if faces:
        job = _embed_later(identity, faces)
        for _, pending, _ in due:
            pending.job = job
    for offer in offers:
        offer.tracks.settle(offer.key)


def _count(faces: list[tuple[Offer, Candidate]]) -> list[np.ndarray]:
    for offer, _ in faces:
        offer.tracks.metrics.identity_checks.labels(offer.tracks.stream).inc()
    return [face.aligned for _, face in faces]


def _embed(identity: IdentityCheck, faces: list[tuple[Offer, Candidate]]) -> list:
    """One recognizer call for these faces, now, each counted against its offer's stream."""
    return list(identity.embed(_count(faces)))


def _embed_later(identity: IdentityCheck, faces: list[tuple[Offer, Candidate]]) -> Future:
    """One recognizer call for these faces, on the identity thread where there is one."""
    return identity.embed_later(_count(faces))
