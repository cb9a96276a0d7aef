"""Where the threads and queues are wired: sources -> detector -> worker -> publisher.

- one `VideoSource` thread per stream decodes into that stream's `FrameBuffer`;
- the detector thread takes a round of items, at most one per stream, and hands it to the
  detector stage (edge/detect_align.py: one detector call for the round's frames, each face cut
  and aligned); rounds wait for the worker in a short bounded queue;
- the worker (the thread calling `run`) hands each round to the track -> select stage
  (edge/track_select.py: every stream's tracks, edge/stream_tracks.py; one scorer call for every
  face of the round). Two stages rather than one, because inference releases the GIL: frame N+1
  is detected and aligned while frame N is tracked and scored;
- with the identity check on, one identity thread embeds the faces the worker's checks need, while the
  worker goes on with the rounds behind (a checked track's offers wait for the verdict;
  edge/stream_tracks.py);
- the publisher thread enhances the faces the worker decided to publish, encodes and sends them
  (and keeps them in the spool), so a slow JPEG or SR never stalls detection.
A stopped pipeline (signal, or every stream finished) processes the frames already
decoded, then publishes the best face of every live track before it returns. An optional
`observer` sees every candidate a track is offered (on the worker thread, edge/track_select.py).
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .cadence import DetectCadence
from .config import Config
from .detect import ScrfdDetector, YuNetDetector
from .detect_align import DetectAlign
from .enhance import make_enhancer
from .errors import ConfigError
from .face_message import OutgoingFace
from .identity import IdentityCheck
from .metrics import Metrics, MetricsServer
from .notify import SystemdNotifier
from .publish import Publisher
from .recognize import SFaceRecognizer
from .select import make_scorer
from .spool import Spool
from .source import FrameBuffer, StreamEvent, VideoSource, decoder_thread_count, is_live_url, mask_url
from .track_select import CandidateObserver, TrackSelect

log = logging.getLogger("faceedge.pipeline")


def make_detector(config: Config):
    from faceedge.trt_engines.models import open_model

    cfg = config.detect
    backend = open_model("detector", config.inference, ref=cfg.model, config=config)
    if cfg.kind == "scrfd":
        return ScrfdDetector(cfg.model, backend, score_threshold=cfg.score_threshold)
    return YuNetDetector(cfg.model, score_threshold=cfg.score_threshold, nms_threshold=cfg.nms_threshold,
                         backend=backend)


def make_identity_check(config: Config, submit=None) -> IdentityCheck | None:
    """The check the config asks for; `submit(fn, *args) -> Future` runs its embeddings (None: at once)."""
    from faceedge.trt_engines.models import open_model

    cfg = config.track
    if not cfg.identity_check:
        return None
    recognizer = SFaceRecognizer(backend=open_model("recognizer", config.inference))
    return IdentityCheck(recognizer, cfg.identity_min_cosine, cfg.identity_min_score, cfg.identity_face_change,
                         cfg.identity_check_interval, submit=submit, box_jump=cfg.identity_box_jump)


def stream_id_for(url: str) -> str:
    """A stream id derived from a file name or URL path, e.g. people_1080p."""
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", url.rstrip("/").rsplit("/", 1)[-1])
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:64] or "cam0"


@dataclass
class StageFailure:
    """The detector thread's exception, raised again by the worker."""

    error: BaseException


@dataclass
class StreamFeed:
    """Per stream: its decoder thread and the buffer between it and the detector thread."""

    source: VideoSource
    buffer: FrameBuffer
    failed: str = ""


class Pipeline:
    def __init__(self, config: Config, *, detector=None, scorer=None, enhancer=None, metrics: Metrics | None = None,
                 observer: CandidateObserver | None = None, identity: IdentityCheck | None = None):
        if not config.streams:
            raise ConfigError("no streams configured: give --rtsp URL, --input FILE or 'streams' in the config")
        self.config = config
        self.metrics = metrics or Metrics()
        detector = detector or make_detector(config)
        scorer = scorer or make_scorer(config.select, config.inference)
        self.enhancer = enhancer or make_enhancer(config.enhance, config.inference)
        self.identity_thread = ThreadPoolExecutor(1, thread_name_prefix="identity")
        identity = identity or make_identity_check(config, self.identity_thread.submit)
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.jobs: queue.Queue = queue.Queue()  # OutgoingFace, then None: worker -> publisher
        # Rounds between detector and worker: enough to overlap the two stages, no more.
        self.detected: queue.Queue = queue.Queue(maxsize=2)
        self._detector_thread = threading.Thread(target=self._detect_loop, name="detector", daemon=True)
        self.publisher: Publisher | None = None
        self.metrics_server: MetricsServer | None = None
        self.streams: dict[str, StreamFeed] = {}
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
            self.streams[stream.id] = StreamFeed(source, buffer)
            self.metrics.stream_state(stream.id, "connecting")
        self.detect_align = DetectAlign(detector, config, self.metrics)
        self.track_select = TrackSelect(config, self.metrics, scorer, config.publish.instance or socket.gethostname(),
                                        self.jobs.put, identity, observer)
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

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        self.publisher = Publisher(cfg.publish.bind, cfg.publish.send_hwm, cfg.publish.linger_s,
                                   curve=cfg.publish.curve)
        if cfg.metrics.enabled:
            self.metrics_server = MetricsServer(self.metrics, cfg.metrics.host, cfg.metrics.port).start()
        self._publisher_thread.start()
        self._detector_thread.start()
        for name, feed in self.streams.items():
            log.info("stream %s: opening %s", name, mask_url(feed.source.stream.url))
            feed.source.start()
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
        for name, feed in self.streams.items():
            processed = self.metrics.value("faceedge_frames_processed_total", stream=name)
            published = self.metrics.published(name)
            log.info("stream %s: %d frames processed, %d faces published%s", name, processed, published,
                     f"; failed: {feed.failed}" if feed.failed else "")
        return 1 if any(feed.failed for feed in self.streams.values()) else 0

    def _detect_loop(self) -> None:
        """Detector thread: rounds of buffered items -> `self.detected`, then None when every
        stream has finished (or the pipeline stopped and the buffers are drained)."""
        try:
            finished = set()
            while True:
                items = []
                for name, feed in self.streams.items():
                    item = feed.buffer.get_nowait()
                    if item is not None:
                        items.append(item)
                        if isinstance(item, StreamEvent) and item.kind == "finished":
                            finished.add(name)
                if items:
                    self.detected.put(self.detect_align.detect(items))
                    continue
                if len(finished) == len(self.streams):
                    break
                if self.stop_event.is_set() and not any(f.source.is_alive() for f in self.streams.values()):
                    if not any(len(f.buffer) for f in self.streams.values()):
                        break
                    continue
                self.wake.wait(0.1)
                self.wake.clear()
        except BaseException as exc:  # handed to the worker, which fails the run with it
            self.detected.put(StageFailure(exc))
            return
        self.detected.put(None)

    def _work(self) -> None:
        """Worker: each detected round through track -> select, whose messages go to the publisher thread."""
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
            for event in round_.events:
                if event.kind == "finished" and event.detail not in ("end of file", "stopped"):
                    self.streams[event.stream].failed = event.detail
            self.track_select.process(round_)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.stop_event.set()
        self.track_select.end_all()
        self.identity_thread.shutdown()
        self.jobs.put(None)
        self._publisher_thread.join()
        for feed in self.streams.values():
            feed.source.join(timeout=5)
        if self.publisher is not None:
            self.publisher.close()
        if self.metrics_server is not None:
            self.metrics_server.stop()

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

    def _publish(self, job: OutgoingFace) -> None:
        stream = job.meta["stream"]
        started = time.perf_counter()
        enhanced = self.enhancer.enhance(job.candidate)
        enhanced_at = time.perf_counter()
        self.metrics.observe(stream, "enhance", enhanced_at - started)
        parts = job.encode(enhanced, self.config.publish.jpeg_quality)
        if self.spool is not None:  # kept whether or not anyone receives it
            self.spool.append(parts)
        if self.publisher.send(parts):
            self.metrics.faces_published.labels(stream, job.meta["event"]).inc()
        else:
            self.metrics.publish_dropped.labels(stream).inc()
            log.warning("stream %s: track %s face not delivered: a subscriber is at its high-water mark",
                        stream, job.meta["track_id"])
        self.metrics.observe(stream, "publish", time.perf_counter() - enhanced_at)
