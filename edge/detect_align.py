"""The detector stage: a round's frames -> their faces, each cut from the full frame and aligned.

A round holds at most one item per stream (a frame or a source event). The detector sees the round's
frames in one call (frames of the same size are batched across streams); faces smaller than the
stream's `min_face` (source pixels) are dropped before they cost an alignment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .align import align_face, context_box
from .config import Config
from .detect import Detection, Detector
from .select import Candidate
from .source import FramePacket, StreamEvent

if TYPE_CHECKING:  # metrics are an operation: stages are handed one, never import it
    from .metrics import Metrics


@dataclass
class DetectedFrame:
    packet: FramePacket
    faces: list[Candidate]  # one per face kept, cut from the full frame and aligned
    align_s: float  # seconds spent cutting and aligning them


@dataclass
class DetectedRound:
    """One round: at most one item per stream, so handling its events before its frames
    keeps each stream's order."""

    events: list[StreamEvent]
    frames: list[DetectedFrame]
    detect_s: float  # the round's detector call


class DetectAlign:
    def __init__(self, detector: Detector, config: Config, metrics: Metrics):
        self.detector = detector
        self.metrics = metrics
        self.aligned_size = config.select.aligned_size
        self.context_margin = config.select.context_margin
        self.min_face = {stream.id: config.detect.min_face if stream.min_face is None else stream.min_face
                         for stream in config.streams}

    def detect(self, items: list[FramePacket | StreamEvent]) -> DetectedRound:
        events = [item for item in items if isinstance(item, StreamEvent)]
        frames = [item for item in items if isinstance(item, FramePacket)]
        started = time.perf_counter()
        found = self.detector.detect_batch([packet.image for packet in frames]) if frames else []
        detect_s = time.perf_counter() - started
        detected = []
        for packet, detections in zip(frames, found):
            aligning = time.perf_counter()
            faces = self._faces(packet, detections)
            detected.append(DetectedFrame(packet, faces, time.perf_counter() - aligning))
        return DetectedRound(events, detected, detect_s)

    def _faces(self, packet: FramePacket, detections: list[Detection]) -> list[Candidate]:
        """Detections in source pixels, at least min_face, each cut from the full frame and aligned."""
        sx, sy = packet.scale
        min_face = self.min_face[packet.stream]
        kept = [d for d in (d.scaled(sx, sy) for d in detections) if d.size >= min_face]
        self.metrics.faces_detected.labels(packet.stream).inc(len(kept))
        return [self._candidate(packet, det) for det in kept]

    def _candidate(self, packet: FramePacket, det: Detection) -> Candidate:
        x1, y1, x2, y2 = context_box(det.bbox, packet.full.shape, self.context_margin)
        context, (ox, oy) = packet.full.crop_bgr(x1, y1, x2, y2)
        aligned = align_face(context, det.landmarks - np.array([ox, oy], dtype=np.float32), self.aligned_size)
        return Candidate(aligned, det, packet.full.shape, packet.index, packet.pts_s, context, packet.wall, (ox, oy))
