"""Face detection: YuNet (bundled) or a user's SCRFD model, both run by the backend layer and decoded here.

Every detector takes a BGR uint8 image and returns `Detection`s in that image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .detector_input import detector_input, padded_item_shape, scrfd_input_size
from .errors import ModelFileError
from .model_files import load_onnx, resolve_model


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
                 threads: int = 0, backend=None):
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
        return [Detection(boxes[i].astype(np.float32), landmarks[i].astype(np.float32), float(scores[i]))
                for i in np.asarray(keep, dtype=int).ravel()]

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
    """A user's SCRFD model (e.g. from an insightface pack) with landmarks, decoded as insightface's SCRFD does.

    Each image is scaled into the model's input size (its fixed size, else 640x640) keeping its aspect,
    padded at the bottom and right, and fed as RGB (x - 127.5) / 128. Per stride, anchor centres plus the
    predicted distances (in strides) give the box and the 5 landmarks; NMS uses insightface's IoU (+1 pixel
    box sides) at its default 0.4. Models whose outputs carry a batch axis run a batch of images in one call;
    the others (outputs flattened to anchors x values) run one image per call.
    """

    name = "scrfd"
    nms_threshold = 0.4

    def __init__(self, model: str, backend, score_threshold: float = 0.5):
        graph = load_onnx(resolve_model(model)).graph
        heads = {9: ((8, 16, 32), 2), 15: ((8, 16, 32, 64, 128), 1)}  # outputs -> strides, anchors per cell
        if len(graph.output) not in heads:
            raise ModelFileError(f"detector {model}: {len(graph.output)} outputs, not an SCRFD model with landmarks "
                                 f"(9 or 15 outputs: scores, boxes and 5 landmarks per stride)")
        self.strides, anchors = heads[len(graph.output)]
        self.input_size = scrfd_input_size(graph)
        self.batched = len(graph.output[0].type.tensor_type.shape.dim) == 3
        self.backend = backend
        self.input_name = backend.input_names[0]
        self.score_threshold = score_threshold
        width, height = self.input_size
        self.centres = [self._anchor_centres(height // stride, width // stride, stride, anchors)
                        for stride in self.strides]

    @staticmethod
    def _anchor_centres(rows: int, cols: int, stride: int, anchors: int) -> np.ndarray:
        centres = (np.stack(np.mgrid[:rows, :cols][::-1], axis=-1).astype(np.float32) * stride).reshape(-1, 2)
        return np.repeat(centres, anchors, axis=0)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """(1x3xHxW blob of the letterboxed image, its scale from image pixels)."""
        width, height = self.input_size
        ratio = image.shape[0] / image.shape[1]
        if ratio > height / width:
            new_height, new_width = height, int(height / ratio)
        else:
            new_height, new_width = int(width * ratio), width
        canvas = np.zeros((height, width, 3), np.uint8)
        canvas[:new_height, :new_width] = cv2.resize(image, (new_width, new_height))
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128, (width, height), (127.5, 127.5, 127.5), swapRB=True)
        return blob, new_height / image.shape[0]

    def decode(self, outputs: list[np.ndarray], scale: float, item: int = 0) -> list[Detection]:
        """Detections of batch item `item` (0 for models without a batch axis), in pixels of the image."""
        count = len(self.strides)
        heads = [out[item] if self.batched else out for out in outputs]
        scores, boxes, landmarks = [], [], []
        for index, (stride, centres) in enumerate(zip(self.strides, self.centres)):
            keep = np.nonzero(heads[index][:, 0] >= self.score_threshold)[0]
            distance = heads[index + count][keep] * stride
            points = centres[keep]
            boxes.append(np.concatenate([points - distance[:, :2], points + distance[:, 2:4]], axis=1))
            landmarks.append(points[:, None, :] + (heads[index + 2 * count][keep] * stride).reshape(-1, 5, 2))
            scores.append(heads[index][keep, 0])
        score, box, points = np.concatenate(scores), np.concatenate(boxes) / scale, np.concatenate(landmarks) / scale
        return [Detection(box[i].astype(np.float32), points[i].astype(np.float32), float(score[i]))
                for i in self._nms(box, score)]

    def _nms(self, boxes: np.ndarray, scores: np.ndarray) -> list[int]:
        """Indices kept by insightface's greedy NMS, best score first; box sides count +1 pixel."""
        x1, y1, x2, y2 = boxes.T
        areas = (x2 - x1 + 1) * (y2 - y1 + 1)
        order = np.argsort(-scores, kind="stable")
        keep = []
        while order.size:
            first, rest = order[0], order[1:]
            keep.append(int(first))
            width = np.maximum(0.0, np.minimum(x2[first], x2[rest]) - np.maximum(x1[first], x1[rest]) + 1)
            height = np.maximum(0.0, np.minimum(y2[first], y2[rest]) - np.maximum(y1[first], y1[rest]) + 1)
            inter = width * height
            order = rest[inter / (areas[first] + areas[rest] - inter) <= self.nms_threshold]
        return keep

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        prepared = [self.preprocess(image) for image in images]
        if not self.batched or not prepared:
            return [self.decode(self.backend.run({self.input_name: blob}), scale) for blob, scale in prepared]
        outputs = self.backend.run({self.input_name: np.concatenate([blob for blob, _ in prepared])})
        return [self.decode(outputs, scale, item) for item, (_, scale) in enumerate(prepared)]
