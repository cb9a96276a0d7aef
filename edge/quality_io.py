"""Input and output conventions of the quality model, shared by the runtime, calibration and training.

numpy and OpenCV only (no torch): the runtime's scorer and `faceedge train quality` both import it.

Input (the GAN-graded quality patent, figure 5): the face image Img, its row-direction filtered copy Img1
(convolved with a 1xN kernel) and its column-direction filtered copy Img2 (Nx1 kernel),
side by side as one H x 3W image: Img left, Img1 middle, Img2 right.
The patent does not give the kernel; we use the second difference [1, -2, 1], a high-pass
that keeps exactly the fine detail blur and resampling remove.

Output: six quality levels I (best, real sharp faces) .. VI (worst); the continuous score
is the expected level mapped to [0, 1], 1 = level I with certainty, 0 = level VI.
"""

from __future__ import annotations

import cv2
import numpy as np

PANEL_SIZE = 64  # each panel is PANEL_SIZE x PANEL_SIZE; the model input is 64 x 192
LEVELS = ("I", "II", "III", "IV", "V", "VI")
ROW_KERNEL = np.array([[1.0, -2.0, 1.0]], dtype=np.float32)  # 1 x N, N = 3
COLUMN_KERNEL = ROW_KERNEL.T.copy()  # N x 1


def three_panel(face_bgr: np.ndarray, size: int = PANEL_SIZE) -> np.ndarray:
    """One face (BGR uint8, any size) -> size x 3*size x 3 float32: [image | row-filtered | column-filtered]."""
    if face_bgr.ndim != 3 or face_bgr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 BGR image, got shape {face_bgr.shape}")
    if face_bgr.shape[:2] != (size, size):
        interpolation = cv2.INTER_AREA if face_bgr.shape[0] > size else cv2.INTER_LINEAR
        face_bgr = cv2.resize(face_bgr, (size, size), interpolation=interpolation)
    image = face_bgr.astype(np.float32) / 255.0
    rows = cv2.filter2D(image, -1, ROW_KERNEL, borderType=cv2.BORDER_REFLECT)
    columns = cv2.filter2D(image, -1, COLUMN_KERNEL, borderType=cv2.BORDER_REFLECT)
    return np.concatenate([image, rows, columns], axis=1)


def quality_blob(faces, item_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Faces (list or N x H x W x 3 BGR uint8) -> N x 3 x S x 3S float32 model input.

    The panel side S is the model's input height (`item_shape` = 3, S, 3S); None: PANEL_SIZE.
    """
    size = PANEL_SIZE if item_shape is None else item_shape[1]
    panels = np.stack([three_panel(face, size) for face in faces])
    return np.ascontiguousarray(panels.transpose(0, 3, 1, 2))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def score_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """N x 6 level probabilities -> N scores in [0, 1], higher = better quality."""
    expected_index = probabilities @ np.arange(len(LEVELS), dtype=np.float32)
    return (1.0 - expected_index / (len(LEVELS) - 1)).astype(np.float32)
