"""Enhancement of winning faces before they are published: gated face super-resolution.

Only winners pass through an enhancer, once per published event, never every frame.
`SREnhancer` restores a winner only when doing so throws away none of its pixels:

    The generator takes the aligned face shrunk to `lr_size` x `lr_size` (28x28 for the x4
    model, from the 112x112 crop). A face is restored only if its aligned crop holds at most
    `lr_size` source pixels across (`capture_size`: 112 / the alignment transform's scale),
    so the shrunk input is never smaller than the resolution the face was captured at.

For the x4 model that is a face whose crop spans at most 28 source pixels (a frontal face
with about 8.8 px between the eyes); larger faces pass through untouched. The scale comes
from the similarity fitted to all 5 landmarks, not from the distance between the eyes,
which collapses when a head turns. Area shrinking is also how the training pairs were made.
The restored face is blended into the context crop upscaled by the same alignment scale
(the restored face's resolution) through a soft landmark mask (the enhancement refinements' fusion), so no
seam shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .align import ALIGNED_SIZE, ARCFACE_TEMPLATE, alignment_scale, capture_size, similarity_to, template_for
from .errors import ConfigError
from .face_input import shrink, sr_input
from .select import Candidate


@dataclass
class Enhanced:
    face: np.ndarray  # aligned face to publish (restored when sr_applied)
    context: np.ndarray | None  # context crop to publish (restored face fused in when sr_applied)
    sr_applied: bool = False
    model: str | None = None  # name and version of the model that restored the face
    original_face: np.ndarray | None = None  # the aligned crop as detected, published alongside


class Enhancer(Protocol):
    def enhance(self, candidate: Candidate) -> Enhanced: ...


class PassThrough:
    """Publishes the aligned face and context crop untouched."""

    def enhance(self, candidate: Candidate) -> Enhanced:
        return Enhanced(face=candidate.aligned, context=candidate.context)


class SuperResolver:
    """The SR generator (ONNX): low-res aligned BGR uint8 faces -> 112x112 BGR uint8."""

    def __init__(self, model: str = "weights:sr.onnx", inference=None, backend=None):
        from faceedge.trt_engines.models import open_model

        from .config import InferenceConfig
        from .model_files import load_onnx, resolve_model, sha256_file

        path = resolve_model(model)
        meta = {prop.key: prop.value for prop in load_onnx(path).metadata_props}
        self.scale = int(meta.get("scale", 4))
        self.lr_size = ALIGNED_SIZE // self.scale
        self.name = f"{meta.get('name', path.stem)}:{meta.get('version', sha256_file(path)[:12])}"
        self.backend = backend or open_model("sr", inference or InferenceConfig(), ref=model)
        self.input_name = self.backend.input_names[0]

    def lowres(self, aligned: np.ndarray) -> np.ndarray:
        return shrink(aligned, self.lr_size)

    def restore(self, lowres: np.ndarray) -> np.ndarray:
        out = self.backend.run({self.input_name: sr_input(lowres, (3, self.lr_size, self.lr_size))})[0]
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def face_mask(size: int = ALIGNED_SIZE, grow: float = 1.6, feather: float = 6.0) -> np.ndarray:
    """Soft face region in aligned coordinates: the landmark hull grown about its centre,
    feathered with a Gaussian, and tapered to exactly zero at the crop border."""
    points = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    centre = points.mean(axis=0)
    hull = cv2.convexHull(((points - centre) * grow + centre).astype(np.float32)).astype(np.int32)
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), feather)
    ramp = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) / (3 * feather)
    taper = np.clip(np.minimum.outer(ramp, ramp), 0.0, 1.0)
    return mask * taper


def fuse(context: np.ndarray, context_origin: tuple[float, float], landmarks: np.ndarray,
         restored: np.ndarray, zoom: float) -> np.ndarray:
    """Blend the restored aligned face into the context crop upscaled by `zoom`.

    `context_origin` is the crop's top-left corner in frame pixels, `landmarks` the face's
    landmarks in frame pixels. Outside the soft mask the result is the upscaled context exactly.
    """
    size = restored.shape[0]
    to_aligned = similarity_to(landmarks, template_for(size))
    to_frame = cv2.invertAffineTransform(to_aligned)
    to_context = zoom * np.hstack([to_frame[:, :2], (to_frame[:, 2] - np.asarray(context_origin))[:, None]])
    height, width = context.shape[:2]
    out_size = (max(1, int(round(width * zoom))), max(1, int(round(height * zoom))))
    upscaled = cv2.resize(context, out_size, interpolation=cv2.INTER_CUBIC)
    face = cv2.warpAffine(restored, to_context, out_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = cv2.warpAffine(face_mask(size), to_context, out_size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    blended = mask * face.astype(np.float32) + (1.0 - mask) * upscaled.astype(np.float32)
    return np.where(mask > 0, np.clip(np.rint(blended), 0, 255), upscaled).astype(np.uint8)


class SREnhancer:
    """Gate + generator + the enhancement refinements' fusion. Needs nothing beyond the Candidate: its aligned
    crop, its detection (frame-pixel landmarks and box), frame shape and context.

    `max_capture_px` (default: the generator's input size, its upper limit) is the largest
    capture size, in source pixels across the aligned crop, that is restored."""

    def __init__(self, resolver: SuperResolver, max_capture_px: float | None = None, fuse_context: bool = True,
                 max_zoom: float = 8.0):
        if max_capture_px is None:
            max_capture_px = resolver.lr_size
        if max_capture_px > resolver.lr_size:
            raise ConfigError(
                f"enhance.max_capture_px {max_capture_px:g} is above the SR model's {resolver.lr_size}x"
                f"{resolver.lr_size} input: faces would be shrunk below the resolution they were captured at")
        self.resolver, self.max_capture_px = resolver, float(max_capture_px)
        self.fuse_context, self.max_zoom = fuse_context, max_zoom

    def wants(self, candidate: Candidate) -> bool:
        return capture_size(candidate.detection.landmarks, candidate.aligned.shape[0]) <= self.max_capture_px

    def enhance(self, candidate: Candidate) -> Enhanced:
        if not self.wants(candidate):
            return Enhanced(face=candidate.aligned, context=candidate.context,
                            original_face=candidate.aligned)
        restored = self.resolver.restore(self.resolver.lowres(candidate.aligned))[0]
        if restored.shape[0] != candidate.aligned.shape[0]:
            restored = cv2.resize(restored, candidate.aligned.shape[1::-1], interpolation=cv2.INTER_AREA)
        context = candidate.context
        if self.fuse_context and context is not None:
            # The context at the restored face's resolution: aligned pixels per source pixel.
            scale = alignment_scale(candidate.detection.landmarks, restored.shape[0])
            zoom = float(np.clip(scale, 1.0, self.max_zoom))
            context = fuse(context, candidate.context_origin, candidate.detection.landmarks, restored, zoom)
        return Enhanced(face=restored, context=context, sr_applied=True, model=self.resolver.name,
                        original_face=candidate.aligned)


def make_enhancer(config, inference=None) -> Enhancer:
    """Build from the `enhance` section, on the `inference` section's backend."""
    if not config.enabled:
        return PassThrough()
    return SREnhancer(SuperResolver(config.model, inference), config.max_capture_px, config.fuse_context)
