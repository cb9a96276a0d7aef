"""Face alignment (insightface's ArcFace template) and context crops."""

from __future__ import annotations

import warnings

import numpy as np
from insightface.utils import face_align

# insightface 2.1 calls SimilarityTransform.estimate, deprecated (not changed) in scikit-image 0.26.
warnings.filterwarnings("ignore", category=FutureWarning, module="insightface.utils.face_align")

ALIGNED_SIZE = 112
# insightface's ArcFace template: where the 5 landmarks land in an ALIGNED_SIZE face.
ARCFACE_TEMPLATE = face_align.arcface_dst.astype(np.float32)
TEMPLATE_IOD = float(np.linalg.norm(ARCFACE_TEMPLATE[1] - ARCFACE_TEMPLATE[0]))


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Similarity-warp the face onto the 5-point ArcFace template (size x size, BGR)."""
    return face_align.norm_crop(image, np.asarray(landmarks, dtype=np.float32), image_size=size)


def context_box(bbox: np.ndarray, shape: tuple[int, ...], margin: float = 0.5) -> tuple[int, int, int, int]:
    """The face box grown by `margin` of its size on each side, clipped to the image."""
    x1, y1, x2, y2 = bbox
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    height, width = shape[:2]
    return (max(0, int(x1 - mx)), max(0, int(y1 - my)), min(width, int(np.ceil(x2 + mx))),
            min(height, int(np.ceil(y2 + my))))


def context_crop(image: np.ndarray, bbox: np.ndarray, margin: float = 0.5) -> np.ndarray:
    x1, y1, x2, y2 = context_box(bbox, image.shape, margin)
    return image[y1:y2, x1:x2].copy()


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(landmarks)[0] - np.asarray(landmarks)[1]))
