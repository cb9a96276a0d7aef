"""One stream's tracks, from first sighting to published face; no threads, no queues.

Per track key (stable from the track's first sighting, see edge.track) a stream keeps the track's
best face so far (`select.BestFace`), its identity state (`identity.TrackIdentity`, when the identity
check is on) and, once the tracker confirms the track, its published track id: 1, 2, ... per stream.

A track ends when the tracker drops it, when the stream finishes, at a shot cut or a gap in the video
(every track of the stream ends and a new tracker starts from nothing), or when the identity check
finds someone else in it (a split: the part so far ends, the track goes on under a new id). An ended
confirmed track is published with its best face as the event the publish policy names, unless that
best is below `select.min_score` (counted instead); live confirmed tracks publish early and periodic
messages as the policy says (edge/publish_policy.py). Every message is made by
`face_message.face_message` and handed to `publish`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .config import Config
from .cuts import CutDetector
from .face_message import OutgoingFace, face_message
from .identity import IdentityCheck, TrackIdentity
from .publish_policy import PublishPolicy
from .select import BestFace, Candidate, Scorer
from .source import FramePacket
from .track import FaceTracker

if TYPE_CHECKING:  # metrics are an operation: stages are handed one, never import it
    from .metrics import Metrics


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
                 publish: Callable[[OutgoingFace], None]):
        self.stream = stream
        self.settings = config.track
        self.policy = PublishPolicy.from_config(config)
        self.metrics = metrics
        self.scorer, self.instance = scorer, instance  # named in every message
        self.publish = publish
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
        self.end(list(self.best))

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
        """Count the scored offer in its track's best face."""
        best = self.best.setdefault(offer.key, BestFace())
        best.offer(offer.candidate, offer.score, offer.rejected, offer.wall)

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
            self.identities.pop(key, None)
            best = self.best.pop(key, None)
            track_id = self.public_ids.pop(key, None)
            if best is None or best.candidate is None or track_id is None:
                continue  # never confirmed: a spurious detection, not a face to publish
            self.metrics.tracks_ended.labels(self.stream).inc()
            if best.score < self.policy.min_score:
                self.metrics.tracks_below_min_score.labels(self.stream).inc()
                continue
            event = self.policy.end_event(best)
            if event is not None:
                self._publish(track_id, best, event)

    def restart(self) -> None:
        """End every track with its best face; a new tracker starts from nothing."""
        self.end(list(self.best))
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

    def _new_track_id(self) -> int:
        track_id, self.next_track_id = self.next_track_id, self.next_track_id + 1
        return track_id

    def _publish(self, track_id: int, best: BestFace, event: str) -> None:
        self.publish(face_message(best, event, stream=self.stream, track_id=track_id, instance=self.instance,
                                  scorer=self.scorer))


def check_identities(identity: IdentityCheck, offers: list[Offer]) -> None:
    """Embed the faces due a check (one recognizer call for all the offers, of every stream) and split the
    tracks they disagree with; call before the offers are taken (edge/identity.py)."""
    checks = []
    for offer in offers:
        track = offer.tracks.identities.setdefault(offer.key, TrackIdentity())
        best = offer.tracks.best.get(offer.key)
        check = identity.choose(track, best, offer.candidate, offer.score)
        if check is not None:
            checks.append((offer, track, best, check))
    if not checks:
        return
    embeddings = iter(_embed(identity, [(offer, face) for offer, *_, check in checks
                                        for face in (check.reference_face, check.candidate) if face is not None]))
    splits = []
    for offer, track, best, check in checks:
        if check.reference_face is not None:
            track.reference, track.verified = next(embeddings), (best.candidate, best.score, best.rejected)
        embedding = next(embeddings)
        if track.reference is None:
            track.reference, track.verified = embedding, (offer.candidate, offer.score, offer.rejected)
        elif not identity.same_person(track, embedding):
            splits.append((offer, track, best, embedding))
    # A best taken after the reference may already be the other person's: it must not stand for the old part.
    unverified = [(offer, track, best) for offer, track, best, _ in splits
                  if best is not None and best.candidate is not None and best.candidate is not track.verified[0]]
    if unverified:
        embedded = _embed(identity, [(offer, best.candidate) for offer, _, best in unverified])
        for (_, track, best), embedding in zip(unverified, embedded):
            if not identity.same_person(track, embedding):
                best.keep(*track.verified)
    for offer, track, _, embedding in splits:
        offer.tracks.split(offer.key)
        offer.tracks.identities[offer.key] = TrackIdentity(
            reference=embedding, verified=(offer.candidate, offer.score, offer.rejected),
            signatures=track.signatures[-1:])


def _embed(identity: IdentityCheck, faces: list[tuple[Offer, Candidate]]) -> list:
    """One recognizer call for these faces, each counted against its offer's stream."""
    for offer, _ in faces:
        offer.tracks.metrics.identity_checks.labels(offer.tracks.stream).inc()
    return list(identity.embed([face.aligned for _, face in faces]))
