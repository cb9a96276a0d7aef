"""Where the threads and queues are wired: sources -> detector -> worker -> publisher.

- one `VideoSource` thread per stream decodes into that stream's `FrameBuffer`;
- the detector thread takes a round of items, at most one per stream, finds the faces in
  the round's frames with one detector call for frames of the same size (batched across
  streams) and cuts and aligns each face; rounds wait for the worker in a short bounded
  queue;
- the worker (the thread calling `run`) runs track -> select on each round: one scorer
  call for every face of the round. Two stages rather than one, because inference
  releases the GIL: frame N+1 is detected and aligned while frame N is tracked and scored;
- the publisher thread enhances winners, encodes JPEGs and sends them, so a slow JPEG
  or SR never stalls detection.
A stopped pipeline (signal, or every stream finished) processes the frames already
decoded, then publishes the best face of every live track before it returns.

An optional `observer` sees every candidate a track is offered (on the worker thread), so the
demo and `faceedge eval stream` can show and judge what each track took in, not only its winner.
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import numpy as np

from .align import align_face, context_box
from .cadence import DetectCadence
from .config import Config
from .cuts import CutDetector
from .detect import Detection, ScrfdDetector, YuNetDetector
from .enhance import make_enhancer
from .errors import ConfigError
from .face_quality import face_quality
from .identity import IdentityCheck, TrackIdentity
from .metrics import Metrics, MetricsServer
from .notify import SystemdNotifier
from .publish import SCHEMA, Publisher, encode_message
from .publish_policy import PublishPolicy
from .recognize import SFaceRecognizer
from .select import BestFace, Candidate, make_scorer
from .spool import Spool
from .source import (FrameBuffer, FramePacket, StreamEvent, VideoSource, decoder_thread_count, is_live_url,
                     mask_url)
from .track import FaceTracker

log = logging.getLogger("faceedge.pipeline")


def make_detector(config: Config):
    from faceedge.trt_engines.models import open_model

    cfg = config.detect
    if cfg.kind == "scrfd":
        return ScrfdDetector(cfg.model, score_threshold=cfg.score_threshold)
    return YuNetDetector(cfg.model, score_threshold=cfg.score_threshold, nms_threshold=cfg.nms_threshold,
                         backend=open_model("detector", config.inference, ref=cfg.model, config=config))


def make_identity_check(config: Config) -> IdentityCheck | None:
    from faceedge.trt_engines.models import open_model

    cfg = config.track
    if not cfg.identity_check:
        return None
    recognizer = SFaceRecognizer(backend=open_model("recognizer", config.inference))
    return IdentityCheck(recognizer, cfg.identity_min_cosine, cfg.identity_min_score, cfg.identity_check_interval)


def stream_id_for(url: str) -> str:
    """A stream id derived from a file name or URL path, e.g. people_1080p."""
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", url.rstrip("/").rsplit("/", 1)[-1])
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:64] or "cam0"


class CandidateObserver(Protocol):
    def offered(self, stream: str, track_key: object, track_id: int | None, candidate: Candidate,
                score: float) -> None:
        """A candidate was offered to a track: `track_id` is the published id once confirmed, else None;
        `track_key` is stable from the track's first sighting."""


@dataclass
class PublishJob:
    meta: dict
    candidate: Candidate


@dataclass
class DetectedFrame:
    state: StreamState
    packet: FramePacket
    faces: list[Candidate]  # one per face kept, cut from the full frame and aligned
    align_s: float  # seconds spent cutting and aligning them


@dataclass
class DetectedRound:
    """One round: at most one item per stream, so handling its events before its frames
    keeps each stream's order."""

    events: list  # (StreamState, StreamEvent)
    frames: list[DetectedFrame]
    detect_s: float  # the round's detector call


@dataclass
class StageFailure:
    """The detector thread's exception, raised again by the worker."""

    error: BaseException


@dataclass
class StreamState:
    """Per stream: its source and buffer (read by the detector thread), and the tracking and
    best-face state (touched by the worker thread only)."""

    source: VideoSource
    buffer: FrameBuffer
    min_face: int  # source pixels; smaller detections are dropped
    tracker: FaceTracker
    cuts: CutDetector | None
    best: dict = field(default_factory=dict)  # track key -> BestFace
    identities: dict = field(default_factory=dict)  # track key -> TrackIdentity
    public_ids: dict = field(default_factory=dict)  # track key -> published track id
    next_track_id: int = 1
    failed: str = ""
    last_index: int | None = None  # of the last frame tracked: the gap since is norfair's period


class Pipeline:
    def __init__(self, config: Config, *, detector=None, scorer=None, enhancer=None, metrics: Metrics | None = None,
                 observer: CandidateObserver | None = None, identity: IdentityCheck | None = None):
        if not config.streams:
            raise ConfigError("no streams configured: give --rtsp URL, --input FILE or 'streams' in the config")
        self.config = config
        self.metrics = metrics or Metrics()
        self.detector = detector or make_detector(config)
        self.scorer = scorer or make_scorer(config.select, config.inference)
        self.enhancer = enhancer or make_enhancer(config.enhance, config.inference)
        self.identity = identity or make_identity_check(config)
        self.observer = observer
        self.publish_policy = PublishPolicy.from_config(config)
        self.instance = config.publish.instance or socket.gethostname()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.jobs: queue.Queue = queue.Queue()
        # Rounds between detector and worker: enough to overlap the two stages, no more.
        self.detected: queue.Queue = queue.Queue(maxsize=2)
        self._detector_thread = threading.Thread(target=self._detect_loop, name="detector", daemon=True)
        self.publisher: Publisher | None = None
        self.metrics_server: MetricsServer | None = None
        self.streams: dict[str, StreamState] = {}
        decoder_threads = decoder_thread_count(config.source.decoder_threads, len(config.streams))
        for stream in config.streams:
            if stream.id in self.streams:
                raise ConfigError(f"streams: duplicate stream id {stream.id!r}")
            policy = config.source.drop_policy
            block = policy == "block" or (policy == "auto" and not is_live_url(stream.url))
            buffer = FrameBuffer(config.source.queue_size, block, self.wake,
                                 on_drop=self.metrics.frames_dropped.labels(stream.id).inc)
            source = VideoSource(stream, config.source, stream.input_size or config.detect.input_size,
                                 decoder_threads, buffer, self.metrics, self.stop_event,
                                 self._cadence(stream, camera_like=not block))
            min_face = config.detect.min_face if stream.min_face is None else stream.min_face
            cuts = None if config.track.cut_threshold is None else CutDetector(config.track.cut_threshold)
            self.streams[stream.id] = StreamState(source, buffer, min_face, self._new_tracker(), cuts)
            self.metrics.stream_state(stream.id, "connecting")
        self._publisher_thread = threading.Thread(target=self._publish_loop, name="publisher", daemon=True)
        # Operations: local face spool (None when disabled) and systemd notifications (no-op outside systemd).
        self.spool = Spool.from_config(config.publish.spool)
        self.notifier = SystemdNotifier()

    def _cadence(self, stream, camera_like: bool) -> DetectCadence:
        """Streams that drop frames like a camera detect every live_interval+1-th frame by default and adapt
        to load; streams that wait (files) detect every frame unless an interval is set."""
        cfg = self.config.detect
        interval = stream.interval if stream.interval is not None else cfg.interval
        if interval is None:
            interval = cfg.live_interval if camera_like else 0
        self.metrics.set_detect_interval(stream.id, interval)
        return DetectCadence(interval, cfg.max_interval if camera_like else None, cfg.narrow_after_s,
                             on_change=lambda now, direction: self.metrics.set_detect_interval(stream.id, now,
                                                                                               direction))

    def _new_tracker(self) -> FaceTracker:
        t = self.config.track
        return FaceTracker(t.distance_threshold, t.hit_counter_max, t.initialization_delay, t.point_score_threshold)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        self.publisher = Publisher(cfg.publish.bind, cfg.publish.send_hwm, cfg.publish.linger_s,
                                   curve=cfg.publish.curve)
        if cfg.metrics.enabled:
            self.metrics_server = MetricsServer(self.metrics, cfg.metrics.host, cfg.metrics.port).start()
        self._publisher_thread.start()
        self._detector_thread.start()
        for name, state in self.streams.items():
            log.info("stream %s: opening %s", name, mask_url(state.source.stream.url))
            state.source.start()
        self.notifier.ready(f"{len(self.streams)} stream(s) opening")

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    def run(self) -> int:
        """Process until stopped or every stream finished; returns 1 if a stream failed."""
        self.start()
        try:
            self._work()
        finally:
            self._shutdown()
        for name, state in self.streams.items():
            processed = self.metrics.value("faceedge_frames_processed_total", stream=name)
            published = self.metrics.published(name)
            log.info("stream %s: %d frames processed, %d faces published%s", name, processed, published,
                     f"; failed: {state.failed}" if state.failed else "")
        return 1 if any(s.failed for s in self.streams.values()) else 0

    def _detect_loop(self) -> None:
        """Detector thread: rounds of buffered items -> `self.detected`, then None when every
        stream has finished (or the pipeline stopped and the buffers are drained)."""
        try:
            finished = set()
            while True:
                items = []
                for name, state in self.streams.items():
                    item = state.buffer.get_nowait()
                    if item is not None:
                        items.append((state, item))
                        if isinstance(item, StreamEvent) and item.kind == "finished":
                            finished.add(name)
                if items:
                    self.detected.put(self._detect_round(items))
                    continue
                if len(finished) == len(self.streams):
                    break
                if self.stop_event.is_set() and not any(s.source.is_alive() for s in self.streams.values()):
                    if not any(len(s.buffer) for s in self.streams.values()):
                        break
                    continue
                self.wake.wait(0.1)
                self.wake.clear()
        except BaseException as exc:  # handed to the worker, which fails the run with it
            self.detected.put(StageFailure(exc))
            return
        self.detected.put(None)

    def _detect_round(self, items: list) -> DetectedRound:
        events = [(state, item) for state, item in items if isinstance(item, StreamEvent)]
        frames = [(state, item) for state, item in items if isinstance(item, FramePacket)]
        started = time.perf_counter()
        found = self.detector.detect_batch([packet.image for _, packet in frames]) if frames else []
        detect_s = time.perf_counter() - started
        detected = []
        for (state, packet), detections in zip(frames, found):
            aligning = time.perf_counter()
            faces = self._faces(state, packet, detections)
            detected.append(DetectedFrame(state, packet, faces, time.perf_counter() - aligning))
        return DetectedRound(events, detected, detect_s)

    def _work(self) -> None:
        while True:
            self.notifier.tick(self.metrics.health)
            try:
                round_ = self.detected.get(timeout=0.1)
            except queue.Empty:
                continue
            if round_ is None:
                return
            if isinstance(round_, StageFailure):
                raise round_.error
            self._process_round(round_)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.stop_event.set()
        for name, state in self.streams.items():
            self._end_tracks(name, state, list(state.best))
        self.jobs.put(None)
        self._publisher_thread.join()
        for state in self.streams.values():
            state.source.join(timeout=5)
        if self.publisher is not None:
            self.publisher.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()

    # -- worker ------------------------------------------------------------------------------------

    def _on_event(self, state: StreamState, event: StreamEvent) -> None:
        if event.kind == "disconnected":
            # A gap in the video: tracks cannot continue across it, so each ends with its best face.
            self._restart_tracking(event.stream, state)
            if state.cuts is not None:
                state.cuts.reset()
        elif event.kind == "finished":
            self._end_tracks(event.stream, state, list(state.best))
            if event.detail not in ("end of file", "stopped"):
                state.failed = event.detail

    def _process_round(self, detected: DetectedRound) -> None:
        for state, event in detected.events:
            self._on_event(state, event)
        matches, candidates = [], []
        for frame in detected.frames:
            state, packet, stream = frame.state, frame.packet, frame.packet.stream
            self.metrics.observe(stream, "detect", detected.detect_s)
            self.metrics.observe(stream, "align", frame.align_s)
            tracking = time.perf_counter()
            if state.cuts is not None and state.cuts.is_cut(packet.image):
                # A new shot: whoever is where a face was is not that face.
                self.metrics.scene_cuts.labels(stream).inc()
                self._restart_tracking(stream, state)
            update = state.tracker.update([face.detection for face in frame.faces], period=self._period(state, packet))
            self.metrics.observe(stream, "track", time.perf_counter() - tracking)
            by_detection = {id(face.detection): face for face in frame.faces}
            if self.identity is not None:
                for key in update.resumed:
                    state.identities.setdefault(key, TrackIdentity()).recheck = True
            for key, det in update.matched:
                matches.append((state, packet, key))
                candidates.append(by_detection[id(det)])
            for key in update.confirmed:
                if key not in state.public_ids:
                    state.public_ids[key] = state.next_track_id
                    state.next_track_id += 1
            self._end_tracks(stream, state, update.ended)

        selecting = time.perf_counter()
        scores = self.scorer.score(candidates) if candidates else []
        margin = self.config.select.edge_margin
        offers = [(state, packet, key, cand, float(score), cand.touches_edge(margin))
                  for (state, packet, key), cand, score in zip(matches, candidates, scores)]
        if self.identity is not None:
            self._check_identities(offers)
        for state, packet, key, cand, score, rejected in offers:
            best = state.best.setdefault(key, BestFace())
            best.offer(cand, score, rejected, packet.wall)
            if self.observer is not None:
                self.observer.offered(packet.stream, key, state.public_ids.get(key), cand, score)
        for frame in detected.frames:
            self._maybe_update(frame.packet.stream, frame.state, frame.packet)
        selected = time.perf_counter()
        for frame in detected.frames:
            stream = frame.packet.stream
            # Scoring is one call for the whole round, so each of its frames is charged the round's time.
            self.metrics.observe(stream, "select", selected - selecting)
            self.metrics.tracks_active.labels(stream).set(sum(frame.state.tracker.live().values()))
            self.metrics.frame_done(stream, time.time() - frame.packet.wall)

    def _period(self, state: StreamState, packet: FramePacket) -> int:
        """Frames since the stream's last tracked frame (skipped or dropped in between), norfair's period.
        Capped at initialization_delay: norfair starts a track's hit counter at the period, so a longer one
        would confirm every detection, a spurious one too, on sight."""
        gap = 1 if state.last_index is None else packet.index - state.last_index
        state.last_index = packet.index
        return max(1, min(gap, self.config.track.initialization_delay))

    def _check_identities(self, offers: list) -> None:
        """Embed the faces due a check (one recognizer call) and split the tracks they disagree with."""
        checks = []
        for state, packet, key, cand, score, rejected in offers:
            track = state.identities.setdefault(key, TrackIdentity())
            best = state.best.get(key)
            chosen = self.identity.choose(track, best, cand, score)
            if chosen is not None:
                checks.append((state, packet.stream, key, track, best, chosen, (cand, score, rejected)))
        if not checks:
            return
        embeddings = self.identity.embed([chosen.aligned for *_, chosen, _ in checks])
        for (state, stream, key, track, best, chosen, offer), embedding in zip(checks, embeddings):
            if self.identity.same_person(track, embedding):
                if best is not None and chosen is best.candidate:
                    track.reference, track.verified = embedding, (best.candidate, best.score, best.rejected)
                continue
            if best is not None and chosen is best.candidate:
                best.keep(*track.verified)  # the face that disagreed never stands for the old part
            self.metrics.track_splits.labels(stream).inc()
            self._split_track(stream, state, key)
            if chosen is offer[0]:  # the new part's first face, already embedded
                state.identities[key] = TrackIdentity(reference=embedding, verified=offer)

    def _split_track(self, stream: str, state: StreamState, key) -> None:
        """End the track's part so far (published as any ended track) and go on under a new published id."""
        confirmed = key in state.public_ids
        self._end_tracks(stream, state, [key])
        if confirmed:
            state.public_ids[key] = state.next_track_id
            state.next_track_id += 1

    def _restart_tracking(self, stream: str, state: StreamState) -> None:
        """End every track of the stream with its best face; a new tracker starts from nothing."""
        self._end_tracks(stream, state, list(state.best))
        state.public_ids.clear()  # keys never offered a face: nothing to publish
        state.identities.clear()
        state.tracker = self._new_tracker()
        state.last_index = None

    def _faces(self, state: StreamState, packet: FramePacket, detections: list[Detection]) -> list[Candidate]:
        """Detections in source pixels, at least min_face, each cut from the full frame and aligned."""
        sx, sy = packet.scale
        kept = [d for d in (d.scaled(sx, sy) for d in detections) if d.size >= state.min_face]
        self.metrics.faces_detected.labels(packet.stream).inc(len(kept))
        return [self._candidate(packet, det) for det in kept]

    def _candidate(self, packet: FramePacket, det: Detection) -> Candidate:
        size = self.config.select.aligned_size
        x1, y1, x2, y2 = context_box(det.bbox, packet.full.shape, self.config.select.context_margin)
        context, (ox, oy) = packet.full.crop_bgr(x1, y1, x2, y2)
        aligned = align_face(context, det.landmarks - np.array([ox, oy], dtype=np.float32), size)
        return Candidate(aligned, det, packet.full.shape, packet.index, packet.pts_s, context, packet.wall, (ox, oy))

    def _end_tracks(self, stream: str, state: StreamState, keys) -> None:
        for key in keys:
            state.identities.pop(key, None)
            best = state.best.pop(key, None)
            track_id = state.public_ids.pop(key, None)
            if best is None or best.candidate is None or track_id is None:
                continue  # never confirmed: a spurious detection, not a face to publish
            self.metrics.tracks_ended.labels(stream).inc()
            if best.score < self.config.select.min_score:
                self.metrics.tracks_below_min_score.labels(stream).inc()
                continue
            event = self.publish_policy.end_event(best)
            if event is not None:
                self._queue_publish(stream, track_id, best, event)

    def _maybe_update(self, stream: str, state: StreamState, packet: FramePacket) -> None:
        """Early and periodic messages of the stream's live confirmed tracks."""
        for key, track_id in state.public_ids.items():
            best = state.best.get(key)
            event = None if best is None else self.publish_policy.live_event(best, packet.wall)
            if event is not None:
                best.published(packet.wall, event)
                self._queue_publish(stream, track_id, best, event)

    def _queue_publish(self, stream: str, track_id: int, best: BestFace, event: str) -> None:
        cand = best.candidate
        det = cand.detection
        meta = {
            "schema": SCHEMA,
            "instance": self.instance,
            "event": event,
            "stream": stream,
            "track_id": track_id,
            "frame_index": cand.frame_index,
            "pts_s": cand.pts_s,
            "wall_time": datetime.fromtimestamp(cand.wall, timezone.utc).isoformat(),
            "bbox": [round(float(v), 1) for v in det.bbox],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in det.landmarks],
            "det_score": round(float(det.score), 4),
            "score": round(float(best.score), 6),
            "scorer": {"name": self.scorer.name, "version": self.scorer.version},
            "sr_applied": False,
            "sr_model": None,
            "edge_rejected": best.rejected,
            "frames_seen": best.frames_seen,
            "track_duration_s": round(best.duration_s, 3),
            "quality": face_quality(cand, best.score),
        }
        self.jobs.put(PublishJob(meta, cand))

    # -- publisher thread -----------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                self._publish(job)
            except Exception:  # one bad face must not stop the faces queued behind it
                log.exception("stream %s: track %s: publishing failed", job.meta["stream"], job.meta["track_id"])

    def _publish(self, job: PublishJob) -> None:
        stream = job.meta["stream"]
        started = time.perf_counter()
        enhanced = self.enhancer.enhance(job.candidate)
        enhanced_at = time.perf_counter()
        self.metrics.observe(stream, "enhance", enhanced_at - started)
        meta = dict(job.meta, sr_applied=enhanced.sr_applied, sr_model=enhanced.model)
        original = enhanced.original_face if enhanced.sr_applied else None
        parts = encode_message(meta, enhanced.face, enhanced.context, original,
                               self.config.publish.jpeg_quality)
        if self.spool is not None:  # kept whether or not anyone receives it
            self.spool.append(parts)
        if self.publisher.send(parts):
            self.metrics.faces_published.labels(stream, meta["event"]).inc()
        else:
            self.metrics.publish_dropped.labels(stream).inc()
            log.warning("stream %s: track %s face not delivered: a subscriber is at its high-water mark",
                        stream, meta["track_id"])
        self.metrics.observe(stream, "publish", time.perf_counter() - enhanced_at)
