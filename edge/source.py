"""Video sources: PyAV decoding in a thread, reconnect with capped exponential backoff.

Each decoded frame is converted once, straight to detector resolution (BGR). The
full-resolution frame is kept as decoded (YUV) and only the regions around faces are
ever converted to BGR, by `FullFrame.crop_bgr`.

Queue policy: each stream has a bounded `FrameBuffer`. With `drop_oldest` (what `auto`
means for live cameras) a full buffer discards its oldest frame so the newest is always
processed, and every discarded frame is counted in `faceedge_frames_dropped_total`.
With `block` (what `auto` means for files) the decoder waits, so every frame is
processed. Stream events (connected, disconnected, finished) share the buffer, keeping
their order relative to frames, and are never dropped.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import av
import cv2
from av.video.reformatter import VideoReformatter
import numpy as np

from .cadence import DetectCadence

log = logging.getLogger("faceedge.source")


def mask_url(url: str) -> str:
    """Hide credentials: rtsp://user:pass@host/x -> rtsp://***@host/x."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def detector_shape(width: int, height: int, input_size: int) -> tuple[int, int]:
    """Detector-resolution (width, height): longer side = input_size, both even."""
    scale = input_size / max(width, height)
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


class FullFrame:
    """The decoded full-resolution frame; converts only requested regions to BGR."""

    def __init__(self, frame: av.VideoFrame):
        if frame.format.name not in ("yuv420p", "yuvj420p"):
            frame = frame.reformat(format="yuv420p")
        self.width, self.height = frame.width, frame.height
        self._planes = [self._plane(frame, i) for i in range(3)]

    @staticmethod
    def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
        plane = frame.planes[index]
        width = frame.width if index == 0 else (frame.width + 1) // 2
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
        return rows[:, :width]

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def crop_bgr(self, x1: int, y1: int, x2: int, y2: int) -> tuple[np.ndarray, tuple[int, int]]:
        """BGR pixels of the box (grown to even coordinates) and the crop's top-left corner."""
        x1, y1 = max(0, x1) & ~1, max(0, y1) & ~1
        x2, y2 = min(self.width & ~1, (x2 + 1) & ~1), min(self.height & ~1, (y2 + 1) & ~1)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return np.zeros((2, 2, 3), np.uint8), (x1, y1)
        luma, u, v = self._planes
        i420 = np.concatenate([
            luma[y1:y2, x1:x2].ravel(),
            u[y1 // 2:y2 // 2, x1 // 2:x2 // 2].ravel(),
            v[y1 // 2:y2 // 2, x1 // 2:x2 // 2].ravel(),
        ]).reshape((y2 - y1) * 3 // 2, x2 - x1)
        return cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), (x1, y1)


@dataclass
class FramePacket:
    stream: str
    index: int  # decoded frame number since the stream first opened
    pts_s: float | None
    wall: float
    image: np.ndarray  # BGR at detector resolution
    full: FullFrame

    @property
    def scale(self) -> tuple[float, float]:
        """Multipliers from detector pixels to source pixels."""
        return self.full.width / self.image.shape[1], self.full.height / self.image.shape[0]


@dataclass
class StreamEvent:
    """Out-of-band news from a source: 'connected', 'disconnected' (tracks must end) or 'finished'."""

    stream: str
    kind: str
    detail: str = ""


def open_container(url: str, transport: str, open_timeout_s: float, read_timeout_s: float):
    """Open with PyAV; its (open, read) timeouts interrupt any protocol that stops answering."""
    options = {"rtsp_transport": transport} if url.lower().startswith(("rtsp://", "rtsps://")) else {}
    return av.open(url, options=options, timeout=(open_timeout_s, read_timeout_s))


class FrameBuffer:
    """Bounded frames plus unbounded, never-dropped events, in arrival order."""

    def __init__(self, capacity: int, block: bool, wake: threading.Event, on_drop=lambda: None):
        self.capacity, self.block, self.wake, self.on_drop = capacity, block, wake, on_drop
        self._items: collections.deque = collections.deque()
        self._frames = 0
        self._cond = threading.Condition()

    def put_frame(self, packet: "FramePacket", stop: threading.Event) -> None:
        with self._cond:
            while self._frames >= self.capacity:
                if self.block:
                    if stop.is_set():
                        return
                    self._cond.wait(0.1)
                    continue
                oldest = next(i for i, item in enumerate(self._items) if isinstance(item, FramePacket))
                del self._items[oldest]
                self._frames -= 1
                self.on_drop()
            self._items.append(packet)
            self._frames += 1
        self.wake.set()

    def put_event(self, event: "StreamEvent") -> None:
        with self._cond:
            self._items.append(event)
        self.wake.set()

    def get_nowait(self):
        """The oldest item, or None."""
        with self._cond:
            if not self._items:
                return None
            item = self._items.popleft()
            if isinstance(item, FramePacket):
                self._frames -= 1
                self._cond.notify()
            return item

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def full(self) -> bool:
        """The next frame would be dropped (or wait)."""
        with self._cond:
            return self._frames >= self.capacity


def is_live_url(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return len(scheme) > 1 and scheme != "file"


# Undecodable packets in a row after which a stream counts as failed rather than damaged.
MAX_BAD_PACKETS = 50


def decoder_thread_count(configured: int | str, streams: int, cores: int | None = None) -> int:
    """FFmpeg threads per stream for `source.decoder_threads` (0 stays 0: FFmpeg picks).

    auto leaves half the cores to detection and the stages after it, shared among the streams.
    Frame threads beyond that only compete with them: on a 2-core host the pipeline ran 14 %
    more frames/s with one decoder thread per stream than with FFmpeg's own choice of three
    (1 and 3 streams of the 1080p clip, docs/decisions/003-decoder-threads-auto.md).
    """
    if configured != "auto":
        return int(configured)
    return max(1, (cores or os.cpu_count() or 1) // (2 * max(1, streams)))


class VideoSource(threading.Thread):
    """Decodes one stream into its `FrameBuffer` until stopped; reconnects on failure."""

    def __init__(self, stream, source_cfg, detect_size: int, decoder_threads: int, buffer: FrameBuffer, metrics,
                 stop: threading.Event, cadence: DetectCadence | None = None):
        super().__init__(name=f"source-{stream.id}", daemon=True)
        self.stream, self.cfg, self.detect_size = stream, source_cfg, detect_size
        self.cadence = cadence or DetectCadence(0)
        self.decoder_threads = decoder_threads
        self.buffer, self.metrics, self.stop_event = buffer, metrics, stop
        self.safe_url = mask_url(stream.url)
        self.index = 0
        self.is_live = is_live_url(stream.url)
        # One scaler for the stream's life: frame.reformat() would build a new swscale context,
        # and start its worker threads, for every frame (measured: 2.7 ms CPU/frame vs 1.3 ms).
        self.scaler = VideoReformatter()

    def _set_state(self, state: str, error: str = "") -> None:
        self.metrics.stream_state(self.stream.id, state, error)

    def run(self) -> None:
        failures = 0
        delay = self.cfg.reconnect_initial_s
        while not self.stop_event.is_set():
            self._set_state("connecting")
            try:
                ended = self._decode_once()
                failures = 0
                delay = self.cfg.reconnect_initial_s
                if ended and not self.is_live and not self.stream.loop:
                    self._emit("finished", "end of file")
                    self._set_state("finished")
                    return
                if self.stop_event.is_set():
                    break
                if ended:
                    self._emit("disconnected", "end of stream")
                    if self.is_live:
                        self._retry_log("stream ended", delay)
                    else:
                        continue  # looping file: reopen at once
            except (av.error.FFmpegError, OSError, ValueError, RuntimeError) as exc:
                failures += 1
                message = str(exc).replace(self.stream.url, self.safe_url)
                self._set_state("retrying", message)
                self._emit("disconnected", message)
                # A file that cannot be read will not heal by waiting; a camera may come back.
                out_of_retries = self.cfg.max_retries is not None and failures > self.cfg.max_retries
                if out_of_retries or not self.is_live:
                    log.error("stream %s (%s): giving up after %d failures: %s", self.stream.id, self.safe_url,
                              failures, message)
                    self._set_state("failed", message)
                    self._emit("finished", message)
                    return
                self._retry_log(message, delay)
            if self.stop_event.wait(delay):
                break
            self.metrics.reconnects.labels(self.stream.id).inc()
            delay = min(delay * 2, self.cfg.reconnect_max_s)
        self._set_state("stopped")
        self._emit("finished", "stopped")

    def _retry_log(self, message: str, delay: float) -> None:
        log.warning("stream %s (%s): %s; reconnecting in %.1fs", self.stream.id, self.safe_url, message, delay)

    def _emit(self, kind: str, detail: str = "") -> None:
        self.buffer.put_event(StreamEvent(self.stream.id, kind, detail))

    def _decode_once(self) -> bool:
        """Decode until end of stream (True) or stop (False); raises on errors."""
        with open_container(self.stream.url, self.stream.transport, self.cfg.open_timeout_s,
                            self.cfg.read_timeout_s) as container:
            if not container.streams.video:
                raise ValueError("no video stream in source")
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            video.codec_context.thread_count = self.decoder_threads
            self._skip_nonref(video)
            self._set_state("live")
            self._emit("connected")
            log.info("stream %s (%s): opened %s %dx%d", self.stream.id, self.safe_url, video.codec_context.name,
                     video.codec_context.width, video.codec_context.height)
            started = time.monotonic()
            first_pts = previous_pts = None
            was_skipping = False
            rate = video.average_rate or video.guessed_rate
            frame_s = 1 / float(rate) if rate else None
            waited = time.perf_counter()
            for frame in self._frames(container, video):
                if self.stop_event.is_set():
                    return False
                pts_s = float(frame.time) if frame.time is not None else None
                elapsed = 1
                skipping = video.codec_context.skip_frame == "NONREF"
                if (skipping or was_skipping) and None not in (pts_s, previous_pts, frame_s):
                    # Frames the decoder skipped still count: indices and tracker periods stay in frames.
                    elapsed = max(1, round((pts_s - previous_pts) / frame_s))
                previous_pts, was_skipping = pts_s, skipping
                self._skip_nonref(video)
                if self.stream.realtime and pts_s is not None:
                    first_pts = pts_s if first_pts is None else first_pts
                    ahead = (pts_s - first_pts) - (time.monotonic() - started)
                    if ahead > 0 and self.stop_event.wait(ahead):
                        return False
                self.metrics.frames_decoded.labels(self.stream.id).inc()
                self.index += elapsed - 1
                if elapsed > 1:
                    self.metrics.frames_skipped.labels(self.stream.id).inc(elapsed - 1)
                if not self.cadence.admit(self.buffer.full, elapsed):
                    # Skipped before any conversion: between detections, only its count is kept.
                    self.index += 1
                    self.metrics.frames_skipped.labels(self.stream.id).inc()
                    waited = time.perf_counter()
                    continue
                width, height = detector_shape(frame.width, frame.height, self.detect_size)
                # Area averaging: anti-aliased like a proper downscale, and cheaper than swscale's default.
                # One thread: the decoder's own threads and the worker already fill the cores.
                image = self.scaler.reformat(frame, width=width, height=height, format="bgr24", interpolation="AREA",
                                             threads=1).to_ndarray()
                packet = FramePacket(self.stream.id, self.index, pts_s, time.time(), image, FullFrame(frame))
                self.index += 1
                # Decode + conversion to detector resolution (includes waiting for the network).
                self.metrics.observe(self.stream.id, "decode", time.perf_counter() - waited)
                self._enqueue(packet)
                waited = time.perf_counter()
            return True

    def _skip_nonref(self, video) -> None:
        """Follow the (load-adaptive) interval: skip non-reference frames in the decoder while it is wide."""
        threshold = self.cfg.skip_nonref_from
        wanted = "NONREF" if threshold is not None and self.cadence.interval >= threshold else "DEFAULT"
        if video.codec_context.skip_frame != wanted:
            video.codec_context.skip_frame = wanted

    def _frames(self, container, video):
        """Decoded frames. A packet the decoder rejects (a file cut off mid-packet, a damaged RTP
        fragment) is skipped and counted, as ffmpeg's own tool does; only a run of
        `MAX_BAD_PACKETS` in a row fails the stream (reconnect for cameras)."""
        bad_in_a_row = 0
        for packet in container.demux(video):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:
                bad_in_a_row += 1
                self.metrics.packets_skipped.labels(self.stream.id).inc()
                if bad_in_a_row >= MAX_BAD_PACKETS:
                    raise
                if bad_in_a_row == 1:
                    log.warning("stream %s (%s): skipping packets the decoder rejects: %s", self.stream.id,
                                self.safe_url, exc)
                continue
            bad_in_a_row = 0
            yield from frames

    def _enqueue(self, packet: FramePacket) -> None:
        self.buffer.put_frame(packet, self.stop_event)
