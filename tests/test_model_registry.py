"""The model registry: each role's input preparation is what its runtime stage feeds, its TensorRT
profile follows the config, and the layers below training never import it."""

import ast
from pathlib import Path

import numpy as np
import pytest

from faceedge.edge.config import InferenceConfig, SelectConfig, load_config
from faceedge.trt_engines.models import input_spec, model_path, trt_profile
from faceedge.trt_engines.model_registry import MODELS

ROOT = Path(__file__).resolve().parents[1]


class Recording:
    """Forwards to a real backend (or answers with `output`) and keeps every batch it was fed."""

    def __init__(self, inner=None, output=None):
        self.inner, self.output, self.fed = inner, output, []
        self.input_names = inner.input_names if inner else ["input"]

    def run(self, feeds):
        self.fed.append(feeds[self.input_names[0]])
        return self.inner.run(feeds) if self.inner else [self.output(len(self.fed[-1]))]


def _faces(count=5, seed=0):
    """Aligned-face-sized BGR images: what every face stage holds."""
    return np.random.default_rng(seed).integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


def _item(name):
    return input_spec(model_path(name), MODELS[name].shapes())[1]


def test_detector_is_fed_the_registry_blob_of_its_frames():
    from faceedge.edge.detect import YuNetDetector
    from faceedge.edge.detector_input import padded_item_shape

    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8) for _ in range(2)]
    detector = YuNetDetector(threads=1)
    detector.backend = recording = Recording(detector.backend)
    detector.detect_batch(frames)  # two frames of one size: one call
    np.testing.assert_array_equal(recording.fed[0], MODELS["detector"].prepare(frames, padded_item_shape(360, 640)))
    odd = rng.integers(0, 256, (250, 333, 3), dtype=np.uint8)
    detector.detect(odd)
    assert recording.fed[1].shape == (1, *padded_item_shape(250, 333))
    np.testing.assert_array_equal(recording.fed[1], MODELS["detector"].prepare([odd], padded_item_shape(250, 333)))


def test_recognizer_is_fed_the_registry_blob_of_aligned_faces():
    from faceedge.edge.recognize import SFaceRecognizer

    faces = _faces()
    recording = Recording(output=lambda n: np.ones((n, 128), np.float32))
    SFaceRecognizer(backend=recording).embed(faces)
    np.testing.assert_array_equal(recording.fed[0], MODELS["recognizer"].prepare(faces, _item("recognizer")))


@pytest.mark.parametrize("name", ["selection", "quality"])
def test_learned_scorer_is_fed_the_registry_blob(name):
    from faceedge.edge.select import Candidate, LearnedScorer, make_scorer

    scorer = make_scorer(SelectConfig(scorer=name), InferenceConfig(threads=1, backend="onnxruntime-cpu"))
    assert isinstance(scorer, LearnedScorer) and scorer.face_input is MODELS[name].prepare
    faces = _faces()
    scorer.backend = recording = Recording(output=lambda n: np.zeros((n, 1), np.float32))
    scorer.input_name = "input"
    scorer.score([Candidate(face, None, (0, 0)) for face in faces])
    np.testing.assert_array_equal(recording.fed[0], MODELS[name].prepare(faces, _item(name)))


def test_super_resolver_is_fed_the_registry_blob():
    from faceedge.edge.enhance import SuperResolver

    faces = _faces()
    recording = Recording(output=lambda n: np.zeros((n, 3, 112, 112), np.float32))
    resolver = SuperResolver(backend=recording)
    resolver.restore(np.stack([resolver.lowres(face) for face in faces]))
    np.testing.assert_array_equal(recording.fed[0], MODELS["sr"].prepare(faces, _item("sr")))


def test_selection_training_and_runtime_share_one_input():
    from faceedge.pipelines.selection.train import FACE_INPUT

    assert MODELS["selection"].prepare is FACE_INPUT


@pytest.mark.parametrize("sizes", [[], ["detect.input_size=1280"], ["detect.input_size=480"],
                                   ["detect.input_size=480", "streams=[{id: a, url: a.mp4, input_size: 1000}]"]])
def test_detector_profile_holds_every_frame_the_config_feeds_it(sizes):
    from faceedge.edge.detector_input import padded_item_shape
    from faceedge.edge.source import detector_shape

    config = load_config(None, sizes)
    (low, opt, high), = trt_profile("detector", model_path("detector"), 32, config).values()
    assert low[0] == 1 and opt[0] == 8 and high[0] == 32
    longest = [config.detect.input_size, *(s.input_size for s in config.streams if s.input_size)]
    for input_size in longest:
        for source in ((1920, 1080), (1080, 1920), (1440, 1080), (1000, 1000), (3840, 1600)):
            width, height = detector_shape(*source, input_size)
            item = padded_item_shape(height, width)
            assert all(lo <= side <= hi for lo, side, hi in zip(low[1:], item, high[1:])), (input_size, source, item)
    # Tuned for a 16:9 frame at detect.input_size: the width of its padded input, inside the profile.
    assert opt[-1] == padded_item_shape(1, config.detect.input_size)[-1]
    assert all(lo <= side <= hi for lo, side, hi in zip(low[1:], opt[1:], high[1:]))


def test_fixed_shape_profiles_are_their_onnx_input():
    for name in ("recognizer", "selection", "quality", "sr"):
        (low, opt, high), = trt_profile(name, model_path(name), 16).values()
        assert low[1:] == opt[1:] == high[1:] == _item(name)


def test_every_spec_names_a_known_measure_and_standin():
    from faceedge.calibration.measures import MEASURES
    from faceedge.calibration.standin import STANDINS

    for spec in MODELS.values():
        assert spec.agreement in MEASURES, spec
        assert spec.standin is None or spec.standin in STANDINS, spec


def _imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_runtime_models_and_calibration_never_import_training():
    upward = [(str(path.relative_to(ROOT)), module)
              for layer in ("edge", "trt_engines", "calibration") for path in sorted((ROOT / layer).rglob("*.py"))
              for module in _imported_modules(path) if module.startswith("faceedge.pipelines")]
    assert upward == []
