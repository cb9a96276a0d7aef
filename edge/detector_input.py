"""What the YuNet detector is fed: BGR frames as NCHW float32 in 0..255, zero-padded at the bottom
and right to a multiple of its largest stride, defined once for the runtime and calibration; and the
one input size a user's SCRFD model is fed (`edge.detect.ScrfdDetector` letterboxes into it)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

STRIDE = 32  # YuNet's largest stride: its input's height and width are multiples of it
SCRFD_FREE_SIZE = (640, 640)  # (width, height) fed to an SCRFD model whose input size is free


def padded_item_shape(height: int, width: int) -> tuple[int, int, int]:
    """The input (C, H, W) that holds a height x width frame: each side rounded up to the stride."""
    return 3, height + (-height) % STRIDE, width + (-width) % STRIDE


def detector_input(frames: Sequence[np.ndarray], item_shape: tuple[int, ...]) -> np.ndarray:
    """HWC uint8 BGR frames -> N x 3 x H x W float32, each frame at the top left of the zeros of
    `item_shape` (its padded shape at run time, `padded_item_shape`)."""
    _, height, width = item_shape
    blob = np.zeros((len(frames), 3, height, width), np.float32)
    for index, frame in enumerate(frames):
        # Copying contiguous planes is 2.5x cheaper than a strided transpose of the interleaved image.
        for channel, plane in enumerate(cv2.split(frame)):
            blob[index, channel, :plane.shape[0], :plane.shape[1]] = plane
    return blob


def scrfd_input_size(graph) -> tuple[int, int]:
    """(width, height) of an SCRFD model's input (its ONNX graph): its fixed size, else SCRFD_FREE_SIZE."""
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    return (dims[3], dims[2]) if len(dims) == 4 and dims[2] > 0 and dims[3] > 0 else SCRFD_FREE_SIZE
