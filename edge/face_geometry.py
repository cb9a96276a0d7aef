"""Head pose from the 5 detector landmarks: a cheap yaw/pitch estimate, no 3-D model.

Used to keep frontal faces when building datasets and to describe each published face.
"""

from __future__ import annotations

import numpy as np

# Nose-tip depth in front of the eye/mouth plane, as a fraction of the inter-ocular distance
# (anthropometric average; it converts the nose's sideways shift into an angle).
NOSE_DEPTH_RATIO = 0.6
# Where the nose sits between the eye line (0) and the mouth line (1) on a frontal face:
# the ArcFace 112x112 template (eyes y=51.6, nose 71.7, mouths 92.3).
FRONTAL_NOSE_HEIGHT = (71.7366 - 51.59) / (92.2041 - 51.59)


def estimate_yaw_pitch(landmarks: np.ndarray) -> tuple[float, float]:
    """Yaw and pitch in degrees from 5 landmarks (eyes, nose, mouth corners).

    Roll is removed first (eye line made horizontal). Yaw: the nose tip's sideways offset from
    the face's midline (mid-eyes to mid-mouth) over its depth, positive towards the image's right.
    Pitch: the nose's vertical position between eye line and mouth line against the frontal
    template, over the same depth, positive when the nose sits low (face tilted down).
    """
    points = np.asarray(landmarks, np.float64).reshape(5, 2)
    eye_vec = points[1] - points[0]
    angle = np.arctan2(eye_vec[1], eye_vec[0])
    c, s = np.cos(-angle), np.sin(-angle)
    p = points @ np.array([[c, s], [-s, c]])
    interocular = max(abs(p[1, 0] - p[0, 0]), 1e-6)
    depth = NOSE_DEPTH_RATIO * interocular
    eye_mid, mouth_mid, nose = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2, p[2]
    midline_x = (eye_mid[0] + mouth_mid[0]) / 2
    yaw = np.degrees(np.arctan2(nose[0] - midline_x, depth))
    eye_to_mouth = max(mouth_mid[1] - eye_mid[1], 1e-6)
    nose_height = (nose[1] - eye_mid[1]) / eye_to_mouth
    pitch = np.degrees(np.arctan2((nose_height - FRONTAL_NOSE_HEIGHT) * eye_to_mouth, depth))
    return float(yaw), float(pitch)
