"""How calibration runs a model on a split and judges its INT8 copy, for each measure a spec names
(`trt_engines.model_registry.ModelSpec.agreement`).

A measure says which of a split's data the model sees (frames, or the aligned face crops of its
tracks), in what batches it runs, and which agreement figures compare its outputs with FP32's.
The data reaches the model through the spec's own input preparation, as at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import agreement
from .dataset import Split, fit_within


def run_batched(backend, inputs: np.ndarray, batch: int = 32) -> list[np.ndarray]:
    name = backend.input_names[0]
    parts = [backend.run({name: inputs[i:i + batch]}) for i in range(0, len(inputs), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


@dataclass(frozen=True)
class FaceMeasure:
    """A face model: the split's face crops, calibrated 16 at a time, outputs compared by `judge`."""

    judge: Callable[[list[np.ndarray], list[np.ndarray], Split], dict]

    def images(self, split: Split, item: tuple[int, ...]) -> list[np.ndarray]:
        return split.faces.crops

    def fit_batches(self, fit: np.ndarray) -> list[np.ndarray]:
        return [fit[i:i + 16] for i in range(0, len(fit), 16)]

    def outputs(self, backend, inputs: np.ndarray) -> list[np.ndarray]:
        return run_batched(backend, inputs)

    def compare(self, ref: list[np.ndarray], test: list[np.ndarray], split: Split) -> dict:
        return self.judge(ref, test, split)


@dataclass(frozen=True)
class FrameOutput:
    heads: list[np.ndarray]  # the detector's raw outputs for one frame
    detections: list  # decoded from them as the runtime decodes them


class DetectionMeasure:
    """The detector: the split's frames scaled into the input, one per call; its raw heads decoded to boxes."""

    def images(self, split: Split, item: tuple[int, ...]) -> list[np.ndarray]:
        return [fit_within(frame, *item[1:]) for frame in split.frames]

    def fit_batches(self, fit: np.ndarray) -> list[np.ndarray]:
        return [fit[i:i + 1] for i in range(len(fit))]

    def outputs(self, backend, inputs: np.ndarray) -> list[FrameOutput]:
        from faceedge.edge.detect import YuNetDetector

        decoder = YuNetDetector(backend=backend)
        frames = []
        for frame in inputs:
            heads = backend.run({backend.input_names[0]: frame[None]})
            frames.append(FrameOutput(heads, decoder.decode(heads, *frame.shape[1:])))
        return frames

    def compare(self, ref: list[FrameOutput], test: list[FrameOutput], split: Split) -> dict:
        def cls_and_obj(frame: FrameOutput) -> np.ndarray:
            return np.concatenate([o.ravel() for o in frame.heads[:6]])

        return agreement.detection_agreement([r.detections for r in ref], [t.detections for t in test],
                                             [cls_and_obj(r) for r in ref], [cls_and_obj(t) for t in test])


MEASURES = {
    "detections": DetectionMeasure(),
    "best_face": FaceMeasure(lambda ref, test, split: agreement.score_agreement(ref, test, split.faces.tracks)),
    "embeddings": FaceMeasure(lambda ref, test, split: agreement.embedding_agreement(ref, test)),
    "images": FaceMeasure(lambda ref, test, split: agreement.image_agreement(ref, test)),
}
