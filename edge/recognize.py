"""Face recognition embeddings with the bundled SFace model (or a user's ArcFace pack)."""

from __future__ import annotations

import numpy as np

from .face_input import sface_input


# Faces one inference sees: a model's activations grow with the batch (3,000 SFace faces at once took 23 GB).
EMBED_BATCH = 64


def embed_in_batches(embed_batch, faces: np.ndarray | list[np.ndarray], size: int = EMBED_BATCH) -> np.ndarray:
    """`embed_batch` over consecutive slices of at most `size` faces (one face of 3 dimensions is a batch of one)."""
    batch = np.asarray(faces)
    if batch.ndim == 3:
        batch = batch[None]
    if len(batch) <= size:
        return embed_batch(batch)
    return np.concatenate([embed_batch(batch[i:i + size]) for i in range(0, len(batch), size)])


class SFaceRecognizer:
    """128-d L2-normalised embeddings of 112x112 aligned BGR faces, fed as `face_input.sface_input` makes them."""

    name = "sface"
    # OpenCV's published cosine threshold for SFace (same identity at or above it).
    cosine_threshold = 0.363
    threshold = cosine_threshold

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a @ b.T

    def __init__(self, model: str = "bundled:sface", threads: int = 0, backend=None):
        from faceedge.trt_engines.backends import open_backend
        from faceedge.trt_engines.models import batched_onnx

        from .model_files import resolve_model, sha256_file

        self.version = sha256_file(resolve_model(model))[:12]
        self.backend = backend or open_backend(batched_onnx(model), threads=threads)
        self.input_name = self.backend.input_names[0]

    def embed(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        return embed_in_batches(self._embed_batch, faces)

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        feats = self.backend.run({self.input_name: sface_input(faces)})[0]
        return feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(min=1e-12)
