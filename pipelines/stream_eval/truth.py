"""The per-frame oracle's raw material: every face in every frame, detected as the pipeline would.

A clip is decoded with PyAV, each frame scaled to detector resolution as `edge.source` does
(longer side `detect.input_size`, area averaging), detected with the pipeline config's detector
settings, boxes taken back to source pixels, faces below `detect.min_face` dropped, and each kept
face aligned from the full frame and embedded with SFace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import av
import numpy as np
from tqdm import tqdm

from faceedge.edge.align import align_face
from faceedge.edge.recognize import EMBED_BATCH
from faceedge.edge.source import detector_shape


@dataclass
class ScannedFace:
    frame_index: int
    bbox: np.ndarray  # source pixels
    det_score: float
    embedding: np.ndarray  # SFace, L2-normalised

    @property
    def area(self) -> float:
        return float((self.bbox[2] - self.bbox[0]) * (self.bbox[3] - self.bbox[1]))


@dataclass
class ClipScan:
    path: str
    frame_pts: list[float] = field(default_factory=list)  # stream time of each decoded frame
    faces: list[ScannedFace] = field(default_factory=list)
    aligned: list[np.ndarray] = field(default_factory=list)  # faces[i]'s aligned face

    def frame_time(self, index: int) -> float:
        if not self.frame_pts:
            return 0.0
        return self.frame_pts[min(max(index, 0), len(self.frame_pts) - 1)]

    def by_frame(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, face in enumerate(self.faces):
            out.setdefault(face.frame_index, []).append(i)
        return out


def scan_clip(path: str, detector, recognizer, input_size: int, min_face: float, desc: str = "") -> ClipScan:
    scan = ClipScan(path)
    pending: list[tuple[int, np.ndarray, float, np.ndarray]] = []
    with av.open(path) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        total = video.frames or None
        for index, frame in enumerate(tqdm(container.decode(video), total=total, desc=desc or "oracle scan",
                                           leave=False)):
            scan.frame_pts.append(float(frame.time) if frame.time is not None else index / 25.0)
            width, height = detector_shape(frame.width, frame.height, input_size)
            small = frame.reformat(width=width, height=height, format="bgr24", interpolation="AREA").to_ndarray()
            found = detector.detect(small)
            if not found:
                continue
            full = frame.to_ndarray(format="bgr24")
            sx, sy = frame.width / width, frame.height / height
            for det in (d.scaled(sx, sy) for d in found):
                if det.size >= min_face:
                    pending.append((index, det.bbox.copy(), det.score, align_face(full, det.landmarks)))
    for start in range(0, len(pending), EMBED_BATCH):
        chunk = pending[start:start + EMBED_BATCH]
        embeddings = recognizer.embed([item[3] for item in chunk])
        for (index, bbox, score, aligned), emb in zip(chunk, embeddings):
            scan.faces.append(ScannedFace(index, bbox, float(score), emb))
            scan.aligned.append(aligned)
    return scan
