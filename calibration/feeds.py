"""Turn frames and face crops into model inputs, batch by batch.

Face models read their input convention from ONNX metadata when the exporter wrote it
(`faceedge.color` = rgb|bgr, `faceedge.mean`, `faceedge.std`: one value or three, in
0..255 units); otherwise RGB scaled to 0..1. SFace takes RGB in 0..255.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.model_files import load_onnx

from .dataset import scale_to

# The trained scorers' convention is edge.face_input.FaceInput (BGR, (x - 127.5) / 128).
KNOWN = {"recognizer": ("rgb", 0.0, 1.0), "selection": ("bgr", 127.5, 128.0), "quality": ("bgr", 127.5, 128.0)}


def input_convention(model: str, path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    if model in KNOWN:
        color, mean, std = KNOWN[model]
    else:
        meta = {p.key: p.value for p in load_onnx(path).metadata_props}
        color = meta.get("faceedge.color", "rgb")
        mean = [float(v) for v in meta.get("faceedge.mean", "0").split(",")]
        std = [float(v) for v in meta.get("faceedge.std", "255").split(",")]
    as_vec = lambda v: np.asarray(v, dtype=np.float32).reshape(-1, 1, 1)  # noqa: E731
    return color, as_vec(mean), as_vec(std)


def face_batch(crops: list[np.ndarray], item_shape: tuple[int, ...], convention) -> np.ndarray:
    color, mean, std = convention
    channels, height, width = item_shape
    out = np.empty((len(crops), channels, height, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        if crop.shape[:2] != (height, width):
            crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
        if color == "rgb":
            crop = crop[..., ::-1]
        out[i] = (crop.transpose(2, 0, 1).astype(np.float32) - mean) / std
    return out


def frame_batch(frames: list[np.ndarray], item_shape: tuple[int, int, int]) -> np.ndarray:
    """Frames scaled into (H, W) = item_shape[1:], padded bottom/right, NCHW BGR 0..255 (YuNet)."""
    _, height, width = item_shape
    out = np.zeros((len(frames), 3, height, width), dtype=np.float32)
    for i, frame in enumerate(frames):
        small = scale_to(frame, max(height, width))
        if small.shape[0] > height or small.shape[1] > width:
            small = scale_to(frame, int(max(height, width) * min(height / small.shape[0], width / small.shape[1])))
        out[i, :, : small.shape[0], : small.shape[1]] = small.transpose(2, 0, 1)
    return out
