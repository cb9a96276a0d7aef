"""The worker stage: track -> select on each round of detected frames, for every stream; no threads.

Per round: the source events first (a gap ends a stream's tracks, the end of a stream ends them too),
then each frame's faces through its stream's tracks (edge/stream_tracks.py), then one scorer call for
every face the tracker matched, the offers (through the identity check when it is on: one recognizer job
for the round's due checks), and the live tracks' early and periodic messages. Messages go to `publish`
as they are decided.

An optional `observer` sees every candidate a track takes in, so the demo and `faceedge eval stream`
can show and judge what each track took in, not only its winner.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from .config import Config
from .detect_align import DetectedRound
from .face_message import OutgoingFace
from .identity import IdentityCheck
from .select import Scorer
from .source import StreamEvent
from .stream_tracks import CandidateObserver, StreamTracks, check_identities

if TYPE_CHECKING:  # metrics are an operation: stages are handed one, never import it
    from .metrics import Metrics


class TrackSelect:
    def __init__(self, config: Config, metrics: Metrics, scorer: Scorer, instance: str,
                 publish: Callable[[OutgoingFace], None], identity: IdentityCheck | None = None,
                 observer: CandidateObserver | None = None):
        self.metrics = metrics
        self.scorer = scorer
        self.identity = identity
        self.edge_margin = config.select.edge_margin
        self.streams = {stream.id: StreamTracks(stream.id, config, metrics, scorer, instance, publish, identity,
                                                observer)
                        for stream in config.streams}

    def on_event(self, event: StreamEvent) -> None:
        tracks = self.streams[event.stream]
        if event.kind == "disconnected":
            tracks.disconnected()
        elif event.kind == "finished":
            tracks.end_all()

    def process(self, detected: DetectedRound) -> None:
        for event in detected.events:
            self.on_event(event)
        offers = []
        for frame in detected.frames:
            stream = frame.packet.stream
            self.metrics.observe(stream, "detect", detected.detect_s)
            self.metrics.observe(stream, "align", frame.align_s)
            tracking = time.perf_counter()
            offers.extend(self.streams[stream].track(frame.packet, frame.faces))
            self.metrics.observe(stream, "track", time.perf_counter() - tracking)

        selecting = time.perf_counter()
        scores = self.scorer.score([offer.candidate for offer in offers]) if offers else []
        for offer, score in zip(offers, scores):
            offer.score, offer.rejected = float(score), offer.candidate.touches_edge(self.edge_margin)
        if self.identity is not None:
            check_identities(self.identity, offers)
        else:
            for offer in offers:
                offer.tracks.take(offer)
        for frame in detected.frames:
            self.streams[frame.packet.stream].publish_live(frame.packet.wall)
        selected = time.perf_counter()
        for frame in detected.frames:
            stream = frame.packet.stream
            # Scoring is one call for the whole round, so each of its frames is charged the round's time.
            self.metrics.observe(stream, "select", selected - selecting)
            self.metrics.tracks_active.labels(stream).set(self.streams[stream].live_count())
            self.metrics.frame_done(stream, time.time() - frame.packet.wall)

    def end_all(self) -> None:
        """The pipeline stops: every live track of every stream ends with its best face."""
        for tracks in self.streams.values():
            tracks.end_all()
