"""Face alignment (insightface's ArcFace template) and context crops.

`align_face` is insightface's `face_align.norm_crop` (same template, same least-squares
similarity, same warp), with the similarity solved in closed form: norm_crop's
scikit-image estimator costs 3x more, and every face of every frame is aligned.
`tests/test_align.py` holds the two to the same pixels where insightface is installed (the `dev` extra).
"""

from __future__ import annotations

import cv2
import numpy as np

ALIGNED_SIZE = 112
# insightface's ArcFace template, `arcface_dst` in insightface/utils/face_align.py (MIT): where the 5 landmarks
# (right eye, left eye, nose, right and left mouth corner, image left to right) land in an ALIGNED_SIZE face.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)
TEMPLATE_IOD = float(np.linalg.norm(ARCFACE_TEMPLATE[1] - ARCFACE_TEMPLATE[0]))


def template_for(size: int) -> np.ndarray:
    """The template scaled to a size x size face, as insightface's estimate_norm places it."""
    if size % 112 == 0:
        return ARCFACE_TEMPLATE.astype(np.float64) * (size / 112.0)
    if size % 128 == 0:
        return ARCFACE_TEMPLATE.astype(np.float64) * (size / 128.0) + np.array([8.0 * size / 128.0, 0.0])
    raise ValueError(f"aligned face size must be a multiple of 112 or 128, got {size}")


def similarity_to(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking points onto target.

    Umeyama's estimate without reflection, in 2-D closed form: with points as complex
    numbers z and w, w ~ a z + b with a = sum(conj(z0) w0) / sum(|z0|^2) over centred points.
    """
    points, target = np.asarray(points, np.float64), np.asarray(target, np.float64)
    z = points[:, 0] + 1j * points[:, 1]
    w = target[:, 0] + 1j * target[:, 1]
    z0, w0 = z - z.mean(), w - w.mean()
    a = np.vdot(z0, w0) / max(np.vdot(z0, z0).real, 1e-12)
    b = w.mean() - a * z.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Similarity-warp the face onto the 5-point ArcFace template (size x size, BGR)."""
    matrix = similarity_to(landmarks, template_for(size))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


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


def alignment_scale(landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> float:
    """Aligned pixels per source pixel of the similarity `align_face` applies to these landmarks.

    Fitted to all 5 points, it follows the face's whole extent: when a head turns the eyes
    draw together in the image but the eyes-to-mouth height stays, so the scale barely moves.
    """
    matrix = similarity_to(landmarks, template_for(size))
    return float(np.hypot(matrix[0, 0], matrix[1, 0]))


def capture_size(landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> float:
    """Source pixels across a size x size aligned crop of this face: the resolution it was captured at."""
    return size / max(alignment_scale(landmarks, size), 1e-12)


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(landmarks)[0] - np.asarray(landmarks)[1]))
