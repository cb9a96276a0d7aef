"""What each face model is fed, defined once for the runtime, calibration and training.

Every face model starts from the 112x112 ArcFace-aligned BGR uint8 face. Each preparation takes
a batch of them and the model's per-item input shape (`item_shape`, C x H x W), so that
calibration prepares every model through one call (`trt_engines.model_registry`); models fed one
fixed size (SFace, the learned scorers) do not need it. The quality model's three-panel
input is in `quality_io`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceInput:
    """A learned scorer's input: the face shrunk (area averaging) to `size`, float32 NCHW scaled to about
    [-1, 1]. Training (`pipelines/selection`) and the runtime scorer (`edge.select.LearnedScorer`) both
    call it, so they cannot drift apart; the scorer refuses a model trained at another size."""

    size: int = 64
    mean: float = 127.5
    scale: float = 1.0 / 128.0

    def __call__(self, faces: Sequence[np.ndarray] | np.ndarray, item_shape: tuple[int, ...] | None = None
                 ) -> np.ndarray:
        """(N, size, size, 3) uint8 BGR faces, any square size -> (N, 3, size, size) float32."""
        batch = np.empty((len(faces), 3, self.size, self.size), np.float32)
        for i, face in enumerate(faces):
            if face.shape[0] != self.size or face.shape[1] != self.size:
                face = cv2.resize(face, (self.size, self.size), interpolation=cv2.INTER_AREA)
            batch[i] = (face.transpose(2, 0, 1).astype(np.float32) - self.mean) * self.scale
        return batch


# The selection model sees the face at 64x64.
SELECTION_INPUT = FaceInput(size=64)

# A scorer model whose output has this name gives logits; `LearnedScorer` turns them into
# probabilities in float64, where a float32 or float16 sigmoid inside the graph would saturate.
LOGIT_OUTPUT = "logit"


def sface_input(faces: np.ndarray | Sequence[np.ndarray], item_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """112x112 aligned BGR uint8 faces -> SFace's input: NCHW float32 RGB in 0..255, without normalisation
    (as OpenCV's FaceRecognizerSF feeds it)."""
    batch = np.asarray(faces)
    if batch.ndim == 3:
        batch = batch[None]
    return np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)


def shrink(aligned: np.ndarray, size: int) -> np.ndarray:
    """An aligned face as the SR generator's low-res input sees it: size x size, area-averaged."""
    return cv2.resize(aligned, (size, size), interpolation=cv2.INTER_AREA)


def sr_input(faces: np.ndarray | Sequence[np.ndarray], item_shape: tuple[int, ...]) -> np.ndarray:
    """Aligned BGR uint8 faces -> the SR generator's input: each shrunk to the H x W of `item_shape`
    (faces already that size, the generator's low-res input, are taken as they are), NCHW float32
    BGR in 0..1."""
    size = item_shape[-1]
    lowres = np.asarray([face if face.shape[:2] == (size, size) else shrink(face, size)
                         for face in ([faces] if np.ndim(faces) == 3 else faces)])
    return np.ascontiguousarray(lowres.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
