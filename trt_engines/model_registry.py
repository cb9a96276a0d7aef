"""Every model role faceedge runs, in one place: what its file is, what it is fed, the shapes its
TensorRT profile spans and how its INT8 copy is judged.

The runtime stages, `faceedge bench models`, `faceedge build-engines` and calibration look a role up
here rather than telling roles apart themselves; the input preparations are the runtime's own
functions (`edge.detector_input`, `edge.face_input`, `edge.quality_io`), so nothing feeds a model
anything the pipeline would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

import numpy as np

from faceedge.edge.detector_input import STRIDE, detector_input, padded_item_shape, scrfd_input_size
from faceedge.edge.face_input import SELECTION_INPUT, sface_input, sr_input
from faceedge.edge.quality_io import quality_blob

if TYPE_CHECKING:
    from faceedge.edge.config import Config


class ModelInput(Protocol):
    def __call__(self, images: Sequence[np.ndarray], item_shape: tuple[int, ...]) -> np.ndarray:
        """Images as the runtime stage holds them (BGR frames for the detector, 112x112 aligned faces for
        the others) -> the batch the model is fed; `item_shape` is one item of the model's input (C, H, W)."""


@dataclass(frozen=True)
class ItemShapes:
    """Per-item input shapes (C, H, W) a TensorRT profile spans: smallest, the one it is tuned for, largest."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


@dataclass(frozen=True)
class ModelSpec:
    role: str
    ref: str  # the model file: bundled:NAME, weights:FILE or a path (edge.model_files.resolve_model)
    prepare: ModelInput
    agreement: str  # how calibration judges its INT8 copy: a key of calibration.measures.MEASURES
    # The shapes of a model whose input height and width are free (freed in its ONNX), from the config;
    # None: the ONNX fixes them.
    free_shapes: Callable[[Config], ItemShapes] | None = None
    standin: str | None = None  # the stand-in `faceedge bench models --standin` measures: calibration.standin.STANDINS
    # Activation ranges of `ref` that ship with faceedge (weights:FILE): its INT8 copies need no calibration.
    int8_ranges: str | None = None

    @property
    def dynamic_hw(self) -> bool:
        return self.free_shapes is not None

    def shapes(self, config: Config | None = None) -> ItemShapes | None:
        """Shapes for `config` (None: the defaults); None where the ONNX fixes them."""
        if self.free_shapes is None:
            return None
        from faceedge.edge.config import Config

        return self.free_shapes(config or Config())


def detector_shapes(config: Config) -> ItemShapes:
    """Frames come scaled to a longer side of `detect.input_size` (or a stream's own), padded to the stride:
    the profile holds a square frame of the largest and is tuned for a 16:9 frame of `detect.input_size`.
    A user's SCRFD model (`detect.kind: scrfd`) is fed its one input size, whatever the frames'."""
    if config.detect.kind == "scrfd":
        from faceedge.edge.model_files import load_onnx, resolve_model

        width, height = scrfd_input_size(load_onnx(resolve_model(config.detect.model)).graph)
        return ItemShapes(min=(3, height, width), opt=(3, height, width), max=(3, height, width))
    longest = max([config.detect.input_size, *(s.input_size for s in config.streams if s.input_size)])
    width = config.detect.input_size
    return ItemShapes(min=(3, STRIDE, STRIDE), opt=padded_item_shape(width * 9 // 16, width),
                      max=padded_item_shape(longest, longest))


MODELS = {spec.role: spec for spec in (
    ModelSpec("detector", "bundled:yunet", detector_input, agreement="detections", free_shapes=detector_shapes),
    ModelSpec("recognizer", "bundled:sface", sface_input, agreement="embeddings",
              int8_ranges="weights:sface.int8-ranges.json"),
    ModelSpec("selection", "weights:selection.onnx", SELECTION_INPUT, agreement="best_face", standin="scorer"),
    ModelSpec("quality", "weights:quality.onnx", quality_blob, agreement="best_face", standin="scorer"),
    ModelSpec("sr", "weights:sr.onnx", sr_input, agreement="images", standin="upscaler"),
)}
