"""Turn frames and face crops into model inputs, batch by batch.

Face models get exactly what the runtime feeds them, through the runtime's own functions:
SFace `edge.recognize.sface_input`, the scorers `edge.face_input.SCORER_INPUTS`, the SR
generator `edge.enhance.shrink` + `sr_input`. Calibrating on anything else would fit INT8
ranges to inputs the model never sees.
"""

from __future__ import annotations

import numpy as np

from .dataset import scale_to


def face_inputs(model: str, crops: list[np.ndarray], item_shape: tuple[int, ...]) -> np.ndarray:
    """112x112 aligned BGR crops -> the input `model` gets at run time (`item_shape` = C, H, W)."""
    from faceedge.edge.enhance import shrink, sr_input
    from faceedge.edge.face_input import SCORER_INPUTS
    from faceedge.edge.recognize import sface_input

    if model == "recognizer":
        return sface_input(crops)
    if model == "sr":
        return sr_input([shrink(crop, item_shape[-1]) for crop in crops])
    if model in SCORER_INPUTS:
        return SCORER_INPUTS[model](crops)
    raise ValueError(f"no runtime input for face model {model!r}")


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
