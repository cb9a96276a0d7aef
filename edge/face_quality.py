"""The `quality` object of a published message: the measurements behind a face's selection.

Computed once per published face, from its detection (source pixels) and its aligned crop as
detected (before any super-resolution), so an integrator can see why it was chosen and apply
its own thresholds.
"""

from __future__ import annotations

import cv2
import numpy as np

from .align import inter_ocular_distance
from .face_geometry import estimate_yaw_pitch
from .select import Candidate, laplacian_variance


def face_quality(candidate: Candidate, score: float) -> dict:
    """`score` is the scorer's, in [0, 1]; the object carries it as 0-100."""
    det = candidate.detection
    x1, y1, x2, y2 = (float(v) for v in det.bbox)
    yaw, pitch = estimate_yaw_pitch(det.landmarks)
    luma = cv2.cvtColor(candidate.aligned, cv2.COLOR_BGR2GRAY)
    return {
        "iod_px": round(inter_ocular_distance(det.landmarks), 1),
        "box_px": round(det.size, 1),
        "box_width_px": round(x2 - x1, 1),
        "box_height_px": round(y2 - y1, 1),
        "yaw_deg": round(yaw, 1) + 0.0,  # + 0.0: no "-0.0" in the JSON
        "pitch_deg": round(pitch, 1) + 0.0,
        "sharpness": round(laplacian_variance(luma), 1),
        "brightness": round(float(luma.mean()), 1),
        "score": int(round(100 * float(np.clip(score, 0.0, 1.0)))),
    }
