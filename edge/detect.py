"""Face detection: YuNet (bundled) decoded here, or a user's SCRFD pack through insightface.

Every detector takes a BGR uint8 image and returns `Detection`s in that image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .detector_input import detector_input, padded_item_shape
from .model_files import resolve_model


@dataclass
class Detection:
    bbox: np.ndarray  # [x1, y1, x2, y2]
    landmarks: np.ndarray  # (5, 2): right eye, left eye, nose, right mouth, left mouth (image left to right)
    score: float

    def scaled(self, sx: float, sy: float) -> "Detection":
        scale = np.array([sx, sy], dtype=np.float32)
        return Detection(self.bbox * np.tile(scale, 2), self.landmarks * scale, self.score)

    @property
    def size(self) -> float:
        """Shorter side of the box, in pixels."""
        return float(min(self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]))


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]: ...


class YuNetDetector:
    """YuNet (2023mar) with its anchor-free heads decoded in numpy.

    Score is sqrt(cls * obj), the geometric mean OpenCV's FaceDetectorYN uses, so its
    thresholds carry over. Input is padded to a multiple of the largest stride (32).
    """

    name = "yunet"
    strides = (8, 16, 32)

    def __init__(self, model: str = "bundled:yunet", score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 min_face: int = 0, threads: int = 0, backend=None):
        if backend is None:
            from faceedge.trt_engines.backends import open_backend
            from faceedge.trt_engines.models import batched_onnx, trt_profile

            # The detector's shape profile: its height and width are free, which TensorRT must be told.
            path = batched_onnx(model, dynamic_hw=True)
            backend = open_backend(path, threads=threads, profile=trt_profile("detector", path, max_batch=32))
        self.backend = backend
        self.input_name = self.backend.input_names[0]
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.min_face = min_face
        self._grids: dict[tuple[int, int], list[np.ndarray]] = {}

    def _grid(self, height: int, width: int) -> list[np.ndarray]:
        key = (height, width)
        if key not in self._grids:
            grids = []
            for stride in self.strides:
                rows, cols = height // stride, width // stride
                ys, xs = np.mgrid[0:rows, 0:cols]
                grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32))
            self._grids[key] = grids
        return self._grids[key]

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """HWC uint8 -> 1x3xHxW float32, zero-padded to multiples of 32 at the bottom and right."""
        return detector_input([image], padded_item_shape(*image.shape[:2]))

    def decode(self, outputs: list[np.ndarray], height: int, width: int, item: int = 0) -> list[Detection]:
        """Detections of batch item `item` from the raw heads of an input of `height` x `width`."""
        names = ["cls", "obj", "bbox", "kps"]
        heads = {f"{n}_{s}": outputs[i * 3 + j][item:item + 1]
                 for i, n in enumerate(names) for j, s in enumerate(self.strides)}
        boxes, scores, landmarks = [], [], []
        for stride, grid in zip(self.strides, self._grid(height, width)):
            cls = np.clip(heads[f"cls_{stride}"][0, :, 0], 0, 1)
            obj = np.clip(heads[f"obj_{stride}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            anchors = grid[keep]
            reg = heads[f"bbox_{stride}"][0, keep]
            centre = (anchors + reg[:, :2]) * stride
            size = np.exp(reg[:, 2:4]) * stride
            boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
            kps = heads[f"kps_{stride}"][0, keep].reshape(-1, 5, 2)
            landmarks.append((kps + anchors[:, None, :]) * stride)
            scores.append(score[keep])
        if not boxes:
            return []
        return self._nms(np.concatenate(boxes), np.concatenate(scores), np.concatenate(landmarks))

    def _nms(self, boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray) -> list[Detection]:
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.score_threshold, self.nms_threshold)
        found = []
        for i in np.asarray(keep, dtype=int).ravel():
            det = Detection(boxes[i].astype(np.float32), landmarks[i].astype(np.float32), float(scores[i]))
            if det.size >= self.min_face:
                found.append(det)
        return found

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """One inference call per distinct padded size (frames of several streams share one)."""
        blobs = [self.preprocess(image) for image in images]
        results: list[list[Detection]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, blob in enumerate(blobs):
            by_shape.setdefault(blob.shape, []).append(index)
        for shape, indices in by_shape.items():
            batch = np.concatenate([blobs[i] for i in indices]) if len(indices) > 1 else blobs[indices[0]]
            outputs = self.backend.run({self.input_name: batch})
            for item, index in enumerate(indices):
                results[index] = self.decode(outputs, shape[2], shape[3], item)
        return results


class ScrfdDetector:
    """A user's SCRFD model (e.g. from an insightface pack), through insightface's model_zoo."""

    name = "scrfd"

    def __init__(self, model: str, score_threshold: float = 0.5, input_size: int = 640, min_face: int = 0):
        from insightface.model_zoo import get_model

        self.model = get_model(str(resolve_model(model)), providers=["CPUExecutionProvider"])
        self.model.prepare(ctx_id=-1, input_size=(input_size, input_size), det_thresh=score_threshold)
        self.min_face = min_face

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        return [self.detect(image) for image in images]

    def detect(self, image: np.ndarray) -> list[Detection]:
        boxes, kpss = self.model.detect(image)
        found = []
        for box, kps in zip(boxes, kpss if kpss is not None else [None] * len(boxes)):
            if kps is None:
                continue
            det = Detection(box[:4].astype(np.float32), kps.astype(np.float32), float(box[4]))
            if det.size >= self.min_face:
                found.append(det)
        return found
