"""Encode BGR frames as an H.264 file with PyAV, one frame per pts step: the clips the demo, the stream
benchmark and the tests make go through the decoder exactly as a camera's would."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np


def write_h264(path: str | Path, frames: Iterable[np.ndarray], fps: int, size: tuple[int, int],
               crf: int = 20) -> Path:
    """Write `frames` (BGR uint8, `size` = (width, height)) to `path` at `fps`; returns the path."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"preset": "veryfast", "crf": str(crf)}
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)
