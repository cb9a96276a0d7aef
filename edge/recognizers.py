"""The recognisers that label and judge face selection, chosen by name: `sface`, `onnx:PATH[,key=value...]`, `dlib`.

Every recogniser takes ArcFace-aligned 112x112 BGR uint8 faces and has
- `embed(faces) -> (N, D)` embeddings,
- `similarity(a, b) -> (Na, Nb)`: higher is more alike,
- `threshold`: the same identity at or above it, on the scale `similarity` gives,
- `name` (the spec it was opened from, without options), `spec` (that spec, to reopen it in another process)
  and `version` (short sha256 of its model file).

`sface` is the bundled SFace (cosine, 0.363, OpenCV's published threshold). `onnx:PATH` is any 112x112
embedding ONNX compared by cosine; options after commas: `input=arcface` (RGB, (x - 127.5) / 127.5, ArcFace's
convention and the default) or `input=rgb255` (RGB 0..255 as is, SFace's), and `threshold=X`, which a
generic model needs since no threshold fits every ArcFace. A file that is the bundled SFace (or its
float copy) is recognised by its digest and gets SFace's input and threshold. `dlib` is dlib's ResNet
(`pip install faceedge[dlib]`): its similarity is minus the euclidean distance, so dlib's documented
distance 0.6 is the threshold -0.6.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ConfigError
from .recognize import SFaceRecognizer, embed_in_batches

ONNX_INPUTS = ("arcface", "rgb255")
# dlib's documented same-person euclidean distance for dlib_face_recognition_resnet_model_v1.
DLIB_DISTANCE_THRESHOLD = 0.6
DLIB_CHIP_SIZE, DLIB_CHIP_PADDING = 150, 0.25  # dlib.get_face_chip's defaults, which the ResNet was trained on
# Where dlib's 5-point predictor looks for the face in an ArcFace 112x112 crop: the box dlib's HOG
# detector draws around such a face (brows to chin, cheek to cheek).
DLIB_FACE_BOX = (16, 28, 96, 108)


class Recognizer(Protocol):
    spec: str
    name: str
    version: str
    threshold: float

    def embed(self, faces) -> np.ndarray: ...

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of L2-normalised embeddings."""
    return a @ b.T


def describe(recognizer) -> dict:
    """What a model trained or judged by `recognizer` records about it."""
    return {"name": recognizer.name, "version": recognizer.version, "threshold": float(recognizer.threshold)}


def open_recognizer(spec: str, threads: int = 1) -> Recognizer:
    """Open the recogniser `spec` names (see the module docstring); it keeps `spec` to be reopened elsewhere."""
    if spec == "sface":
        recognizer = SFaceRecognizer(threads=threads)
    elif spec == "dlib":
        recognizer = DlibRecognizer()
    elif spec.startswith("onnx:"):
        path, options = _parse_onnx_spec(spec[len("onnx:"):])
        recognizer = OnnxRecognizer(path, threads=threads, **options)
    else:
        raise ConfigError(f"unknown recognizer {spec!r}; "
                          "use sface, dlib or onnx:PATH[,input=arcface|rgb255][,threshold=X]")
    recognizer.spec = spec
    return recognizer


def _parse_onnx_spec(text: str) -> tuple[Path, dict]:
    path, *pairs = text.split(",")
    options = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key == "input" and value in ONNX_INPUTS:
            options["input_convention"] = value
        elif key == "threshold":
            try:
                options["threshold"] = float(value)
            except ValueError:
                raise ConfigError(f"recognizer onnx:{text}: threshold {value!r} is not a number") from None
        else:
            raise ConfigError(f"recognizer onnx:{text}: unknown option {pair!r}; "
                              f"use input={'|'.join(ONNX_INPUTS)} or threshold=X")
    if not path:
        raise ConfigError("recognizer onnx: needs a file path, e.g. onnx:models/arcface.onnx")
    return Path(path).expanduser(), options


def sface_digests() -> set[str]:
    """sha256 of the bundled SFace file and of the float copies faceedge makes of it."""
    from faceedge.trt_engines.models import batched_onnx

    from .model_files import prepare_onnx, resolve_model, sha256_file

    return {sha256_file(p) for p in (resolve_model("bundled:sface"), prepare_onnx("bundled:sface"),
                                     batched_onnx("bundled:sface"))}


class OnnxRecognizer:
    """A 112x112 embedding ONNX, compared by cosine."""

    similarity = staticmethod(cosine_similarity)

    def __init__(self, path: Path, input_convention: str | None = None, threshold: float | None = None,
                 threads: int = 1):
        from faceedge.trt_engines.backends import open_backend
        from faceedge.trt_engines.models import batched_onnx, input_spec

        from .model_files import sha256_file

        if not Path(path).is_file():
            raise ConfigError(f"recognizer onnx:{path}: file not found")
        digest = sha256_file(Path(path))
        is_sface = digest in sface_digests()
        self.input_convention = input_convention or ("rgb255" if is_sface else "arcface")
        if threshold is None:
            if not is_sface:
                raise ConfigError(f"recognizer onnx:{path}: give its match threshold (cosine), "
                                  f"e.g. onnx:{path},threshold=0.3")
            threshold = SFaceRecognizer.cosine_threshold
        self.threshold = float(threshold)
        self.name = f"onnx:{path}"
        self.version = digest[:12]
        prepared = batched_onnx(str(path))
        try:
            _, item = input_spec(prepared)
        except ValueError:
            item = None  # free spatial dims take 112x112
        if item is not None and tuple(item) != (3, 112, 112):
            raise ConfigError(f"recognizer onnx:{path}: takes input {item}, not (3, 112, 112) aligned faces")
        self.backend = open_backend(prepared, threads=threads, model="recognizer")
        self.input_name = self.backend.input_names[0]

    def embed(self, faces) -> np.ndarray:
        return embed_in_batches(self._embed_batch, faces)

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        from .face_input import sface_input

        blob = sface_input(faces)
        if self.input_convention == "arcface":
            blob = (blob - 127.5) / 127.5
        feats = self.backend.run({self.input_name: blob})[0].reshape(len(blob), -1)
        return feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(min=1e-12)


def dlib_missing() -> str | None:
    """Why the dlib recogniser cannot open here, or None when it can."""
    for module, wheel in (("dlib", "dlib-bin"), ("face_recognition_models", "face-recognition-models")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'faceedge[dlib]', i.e. {wheel})"
    return None


def _dlib_model_file(name: str) -> Path:
    # Found without importing face_recognition_models, whose __init__ needs setuptools' pkg_resources.
    spec = importlib.util.find_spec("face_recognition_models")
    return Path(next(iter(spec.submodule_search_locations))) / "models" / name


class DlibRecognizer:
    """dlib's face recognition ResNet on its own 150x150 chip.

    The chip is made the way dlib makes it (its 5-point shape predictor, then `get_face_chip`, padding 0.25),
    from the ArcFace-aligned 112x112 face: that crop is a little tighter than dlib's chip, so the chip's
    outer rim (about 8 % per side) is black, as for a face at the frame edge.
    """

    name = "dlib"
    threshold = -DLIB_DISTANCE_THRESHOLD

    def __init__(self):
        reason = dlib_missing()
        if reason:
            raise ConfigError(f"recognizer dlib: {reason}")
        import dlib

        from .model_files import sha256_file

        self._dlib = dlib
        model = _dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")
        self.predictor = dlib.shape_predictor(str(_dlib_model_file("shape_predictor_5_face_landmarks.dat")))
        self.model = dlib.face_recognition_model_v1(str(model))
        self.version = sha256_file(model)[:12]
        self.box = dlib.rectangle(*DLIB_FACE_BOX)

    def chip(self, face: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(face[..., ::-1])
        return self._dlib.get_face_chip(rgb, self.predictor(rgb, self.box), DLIB_CHIP_SIZE, DLIB_CHIP_PADDING)

    def embed(self, faces) -> np.ndarray:
        return embed_in_batches(self._embed_batch, faces)

    def _embed_batch(self, faces: np.ndarray) -> np.ndarray:
        return np.array(self.model.compute_face_descriptor([self.chip(f) for f in faces]), np.float32)

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Minus the euclidean distance."""
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
        return -np.sqrt(np.maximum(squared, 0.0))
