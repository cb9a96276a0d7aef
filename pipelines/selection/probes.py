"""Probes: degraded views of real photos, re-detected and re-aligned as the runtime would see them.

A probe starts from a photo's face, shrinks its neighbourhood so the face is `face_px` wide
(a person farther from the camera), degrades it with the restoration generator's recipe (pose warp about the
face, blur, noise, JPEG...) and runs YuNet and alignment again on the result, so its detector
score, box size and landmarks are real. A view the detector misses yields no probe, as at run time;
so does a view whose re-detected box is smaller than the runtime's `detect.min_face` (the pipeline
drops such faces before tracking and scoring, edge/detect_align.py), read from the config default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from faceedge.edge.align import align_face, context_box
from faceedge.edge.config import DetectConfig
from faceedge.edge.detect import Detection
from faceedge.pipelines.dataset import FaceRecord
from faceedge.pipelines.degrade import Degradation

# Face box side after shrinking, pixels (sampled log-uniformly). It starts below MIN_FACE on purpose:
# the re-detected box differs from the shrunk one by a few per cent either way, and the floor is
# applied to the re-detected box, as the runtime applies it to what the detector reports.
FACE_SIZE_RANGE = (12.0, 128.0)
MIN_FACE = float(DetectConfig().min_face)  # the runtime never scores a face whose shorter box side is below this
SEVERITY_RANGE = (0.05, 1.0)
CONTEXT_MARGIN = 1.0  # the photo around the face, in face sizes per side


@dataclass
class Probe:
    identity: str
    source: str  # the photo it came from
    aligned: np.ndarray  # 112x112 BGR, aligned from the degraded view
    detection: Detection  # in the degraded view's pixels
    frame_shape: tuple[int, int]
    strength: float
    params: dict


@dataclass
class ProbeMaker:
    detector: object
    recipe: Degradation = dataclasses.field(default_factory=Degradation)
    face_size_range: tuple[float, float] = FACE_SIZE_RANGE
    severity_range: tuple[float, float] = SEVERITY_RANGE
    min_face: float = MIN_FACE

    def __call__(self, image: np.ndarray, record: FaceRecord, rng: np.random.Generator) -> Probe | None:
        det = record.detection
        face_px = min(float(np.exp(rng.uniform(*np.log(self.face_size_range)))), det.size)
        severity = float(rng.uniform(*self.severity_range))
        x1, y1, x2, y2 = context_box(det.bbox, image.shape, CONTEXT_MARGIN)
        scale = face_px / det.size
        view = cv2.resize(image[y1:y2, x1:x2], (max(8, round((x2 - x1) * scale)), max(8, round((y2 - y1) * scale))),
                          interpolation=cv2.INTER_AREA)
        nose = (det.landmarks[2] - (x1, y1)) * scale
        degraded = dataclasses.replace(self.recipe, severity=severity)(view, rng, centre=(float(nose[0]), float(nose[1])))
        found = self._same_face(self.detector.detect(degraded.image), nose, face_px)
        if found is None or found.size < self.min_face:
            return None
        params = dict(degraded.params, face_px=face_px, severity=severity)
        return Probe(record.identity, str(record.path), align_face(degraded.image, found.landmarks), found,
                     degraded.image.shape[:2], degraded.strength, params)

    @staticmethod
    def _same_face(detections: list[Detection], nose: np.ndarray, face_px: float) -> Detection | None:
        """The detection whose nose is nearest the warped-in face's nose, if within half a face."""
        best = min(detections, key=lambda d: float(np.linalg.norm(d.landmarks[2] - nose)), default=None)
        if best is None or np.linalg.norm(best.landmarks[2] - nose) > 0.5 * face_px:
            return None
        return best
