"""Paired (low-res, high-res) faces for SR training and evaluation.

High-resolution targets are aligned 112x112 faces from `pipelines.dataset` that pass a
quality floor (the restoration generator trains only on high-quality samples): the source face must be at
least as large as the template (no upscaled targets) and sharp enough (Laplacian variance).
Each photo is pre-shrunk with area averaging so the face sits near template scale, which
keeps the alignment warp free of aliasing and cheap. Every draw re-aligns with a random
jitter (shift, scale, rotation) and flip, then makes the low-res input with the restoration generator's
degradations through `Degradation.low_res` (blur, motion, noise, JPEG; exact x2/x4/x8).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceedge.edge.align import TEMPLATE_IOD, align_face, inter_ocular_distance
from faceedge.edge.select import laplacian_variance
from faceedge.pipelines.dataset import build_dataset
from faceedge.pipelines.degrade import Degradation

log = logging.getLogger(__name__)

HR_SIZE = 112
# The restoration generator's degradations; the recipe's pose/occlusion/exposure are not SR's job
# and `low_res` replaces its resample step by the exact downscale.
SR_STEPS = {"gaussian_blur": 0.5, "motion_blur": 0.3, "noise": 0.5, "jpeg": 0.7}
MIN_SHARPNESS = 30.0  # Laplacian variance of the aligned 112 face


@dataclass
class Source:
    identity: str
    image: np.ndarray  # photo shrunk so the face is near template scale
    landmarks: np.ndarray


def load_sources(root: str | Path, detector, identities: list[str] | None = None,
                 min_sharpness: float = MIN_SHARPNESS) -> list[Source]:
    """High-quality faces of `identities` (all when None), ready for jittered re-alignment."""
    sources, dropped = [], 0
    for record in build_dataset(root, detector, size=HR_SIZE, identities=identities):
        iod = inter_ocular_distance(record.detection.landmarks)
        if iod < TEMPLATE_IOD or laplacian_variance(record.aligned) < min_sharpness:
            dropped += 1
            continue
        image = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
        shrink = min(1.0, 1.25 * TEMPLATE_IOD / iod)
        if shrink < 1.0:
            image = cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        sources.append(Source(record.identity, image, record.detection.landmarks * shrink))
    log.info("SR sources: %d kept, %d below the quality floor", len(sources), dropped)
    return sources


def jittered_face(source: Source, rng: np.random.Generator, shift: float = 0.03, zoom: float = 0.05,
                  rotate_deg: float = 5.0) -> np.ndarray:
    """Aligned HR face from landmarks moved by a small random similarity, flipped half the time."""
    points = source.landmarks.astype(np.float64)
    centre = points.mean(axis=0)
    iod = inter_ocular_distance(points)
    angle = np.radians(rng.uniform(-rotate_deg, rotate_deg))
    scale = np.exp(rng.uniform(-zoom, zoom))
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (points - centre) @ rotation.T + centre + rng.uniform(-shift, shift, 2) * iod
    face = align_face(source.image, moved.astype(np.float32), HR_SIZE)
    return face[:, ::-1].copy() if rng.random() < 0.5 else face


class PairSampler:
    """Random (low-res, high-res) BGR uint8 pairs; `severity` is what adaptive degradation turns."""

    def __init__(self, sources: list[Source], scale: int = 4, severity: float = 1.0, seed: int = 0,
                 clean_fraction: float = 0.0):
        if not sources:
            raise ValueError("no training faces passed the quality floor")
        self.sources, self.scale, self.severity = sources, scale, severity
        self.clean_fraction = clean_fraction
        self.rng = np.random.default_rng(seed)

    def degrade(self, face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The restoration generator's recipe, or (with probability `clean_fraction`) a plain area downsample:
        a distant face from a clean camera, which the recipe alone almost never produces."""
        if self.clean_fraction > 0 and rng.random() < self.clean_fraction:
            size = (face.shape[1] // self.scale, face.shape[0] // self.scale)
            return cv2.resize(face, size, interpolation=cv2.INTER_AREA)
        return Degradation(probabilities=dict(SR_STEPS), severity=self.severity).low_res(face, self.scale, rng).image

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        highs = [jittered_face(self.sources[self.rng.integers(len(self.sources))], self.rng) for _ in range(size)]
        lows = [self.degrade(face, self.rng) for face in highs]
        return np.stack(lows), np.stack(highs)


def to_tensor(images: np.ndarray):
    """(N,H,W,3) BGR uint8 -> (N,3,H,W) float 0..1."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255.0


def to_images(tensor) -> np.ndarray:
    return (tensor.detach().clamp(0, 1) * 255.0).round().byte().permute(0, 2, 3, 1).numpy()
