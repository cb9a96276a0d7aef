"""Network input for learned face scorers, defined once for training and runtime.

A learned scorer sees the 112x112 ArcFace-aligned BGR face, shrunk (area averaging) to its
input size, as float32 NCHW scaled to about [-1, 1]. Training (`pipelines/selection`) and the
runtime scorer (`edge.select.LearnedScorer`) both call `FaceInput`, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .quality_io import quality_blob


@dataclass(frozen=True)
class FaceInput:
    size: int = 64
    mean: float = 127.5
    scale: float = 1.0 / 128.0

    def __call__(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N, size, size, 3) uint8 BGR faces, any square size -> (N, 3, size, size) float32."""
        batch = np.empty((len(faces), 3, self.size, self.size), np.float32)
        for i, face in enumerate(faces):
            if face.shape[0] != self.size or face.shape[1] != self.size:
                face = cv2.resize(face, (self.size, self.size), interpolation=cv2.INTER_AREA)
            batch[i] = (face.transpose(2, 0, 1).astype(np.float32) - self.mean) * self.scale
        return batch


# A scorer model whose output has this name gives logits; `LearnedScorer` turns them into
# probabilities in float64, where a float32 or float16 sigmoid inside the graph would saturate.
LOGIT_OUTPUT = "logit"

# scorer name -> the input its model was trained on. The quality model (seed 000) sees the face
# next to its row- and column-filtered copies; that layout lives with its trainer (numpy/cv2 only).
SCORER_INPUTS = {
    "selection": FaceInput(size=64),
    "quality": quality_blob,
}
