"""Recogniser plugins (edge/recognizers.py): sface, onnx:PATH, dlib; the recogniser a trained model records."""

from pathlib import Path

import numpy as np
import pytest

from faceedge.edge.errors import ConfigError
from faceedge.edge.recognizers import dlib_missing, open_recognizer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "identities").is_dir(), reason="shared data not present")


@pytest.fixture(scope="module")
def faces():
    """{identity: aligned clean faces} for three people of the shared data."""
    from faceedge.edge.detect import YuNetDetector
    from faceedge.pipelines.dataset import build_dataset

    records = build_dataset(DATA / "identities", YuNetDetector(threads=1), identities=["obama", "biden", "deepface_08"])
    out = {}
    for record in records:
        out.setdefault(record.identity, []).append(record.aligned)
    return out


def _labels(spec: str):
    """Four-case labels of a few probes of three people, with the recogniser `spec` names."""
    from faceedge.edge.detect import YuNetDetector
    from faceedge.pipelines.dataset import build_dataset
    from faceedge.pipelines.selection.samples import label_blocks, make_blocks, make_gallery, probe_records

    recognizer = open_recognizer(spec)
    records = build_dataset(DATA / "identities", YuNetDetector(threads=1), identities=["obama", "biden", "deepface_08"])
    sources = probe_records(records)
    blocks = make_blocks(sources, range(len(sources)), spec, per_photo=6, seed=3)
    return label_blocks(blocks, make_gallery(records, recognizer), recognizer, recognizer.threshold)


@pytest.mark.slow
@needs_data
def test_sface_through_onnx_path_gives_the_same_labels():
    from faceedge.edge.model_files import resolve_model
    from faceedge.trt_engines.models import batched_onnx

    reference = _labels("sface")
    assert len(reference.labels) > 20 and 0 < reference.labels.mean() < 1
    # The bundled file itself and faceedge's float copy of it: recognised as SFace (its input and threshold).
    for path in (resolve_model("bundled:sface"), batched_onnx("bundled:sface")):
        recognizer = open_recognizer(f"onnx:{path}")
        assert recognizer.input_convention == "rgb255" and recognizer.threshold == 0.363
        got = _labels(f"onnx:{path}")
        assert np.array_equal(got.labels, reference.labels) and np.array_equal(got.cases, reference.cases)
        assert np.allclose(got.genuine_similarity, reference.genuine_similarity, atol=1e-6)
    # Told the wrong convention, the same file labels differently: the convention is what made them agree.
    wrong = _labels(f"onnx:{batched_onnx('bundled:sface')},input=arcface,threshold=0.363")
    assert not np.allclose(wrong.genuine_similarity, reference.genuine_similarity, atol=1e-3)


def _mean_colour_model(path: Path) -> Path:
    """An 'embedding' ONNX: the face input's mean per channel (3-d)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["face"], ["embedding"], axes=[2, 3], keepdims=0)], "mean",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["batch", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def test_onnx_input_conventions_and_spec_errors(tmp_path):
    model = _mean_colour_model(tmp_path / "mean.onnx")
    bright, dark = np.full((112, 112, 3), 200, np.uint8), np.full((112, 112, 3), 50, np.uint8)
    arcface = open_recognizer(f"onnx:{model},threshold=0.3")
    assert arcface.input_convention == "arcface" and arcface.threshold == 0.3
    embedded = arcface.embed(np.stack([bright, dark]))
    # (x - 127.5) / 127.5 puts 200 and 50 on opposite sides of zero; raw 0..255 keeps them alike.
    assert arcface.similarity(embedded[:1], embedded[1:])[0, 0] == pytest.approx(-1.0, abs=1e-5)
    raw = open_recognizer(f"onnx:{model},input=rgb255,threshold=0.3").embed(np.stack([bright, dark]))
    assert float(raw[0] @ raw[1]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ConfigError, match="give its match threshold"):
        open_recognizer(f"onnx:{model}")
    with pytest.raises(ConfigError, match="unknown option"):
        open_recognizer(f"onnx:{model},colour=bgr")
    with pytest.raises(ConfigError, match="file not found"):
        open_recognizer(f"onnx:{tmp_path / 'missing.onnx'},threshold=0.3")
    with pytest.raises(ConfigError, match="unknown recognizer"):
        open_recognizer("facenet")


@needs_data
@pytest.mark.skipif(dlib_missing() is not None, reason=f"dlib extra missing: {dlib_missing()}")
def test_dlib_matches_at_its_documented_distance(faces):
    dlib = open_recognizer("dlib")
    assert dlib.threshold == -0.6 and dlib.name == "dlib" and len(dlib.version) == 12
    obama, biden = dlib.embed(np.stack(faces["obama"])), dlib.embed(np.stack(faces["biden"]))
    assert obama.shape == (len(faces["obama"]), 128)
    same = dlib.similarity(obama, obama)[np.triu_indices(len(obama), 1)]
    other = dlib.similarity(obama, biden)
    # Similarity is minus the euclidean distance, so "distance <= 0.6" is "similarity >= -0.6".
    assert np.allclose(-dlib.similarity(obama[:1], biden[:1]), np.linalg.norm(obama[0] - biden[0]), atol=1e-5)
    assert (same >= dlib.threshold).all() and (other < dlib.threshold).all()


def test_dlib_reports_why_it_is_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dlib" else real(name, *a))
    with pytest.raises(ConfigError, match=r"recognizer dlib: dlib is not installed .*faceedge\[dlib\]"):
        open_recognizer("dlib")


def test_trained_model_records_its_recognizer(tmp_path):
    from faceedge.edge.select import LearnedScorer
    from faceedge.pipelines.selection.model import SelectionNet
    from faceedge.pipelines.selection.train import FACE_INPUT, export_onnx, recognizer_metadata

    path = tmp_path / "selection.onnx"
    recognizer = {"name": "dlib", "version": "abcdef012345", "threshold": -0.6}
    export_onnx(SelectionNet(width=8).eval(), path, FACE_INPUT(np.zeros((2, 112, 112, 3), np.uint8)),
                recognizer_metadata(recognizer))
    assert LearnedScorer("selection", str(path), FACE_INPUT).trained_for == "dlib"
    bare = tmp_path / "bare.onnx"
    export_onnx(SelectionNet(width=8).eval(), bare, FACE_INPUT(np.zeros((2, 112, 112, 3), np.uint8)))
    assert LearnedScorer("selection", str(bare), FACE_INPUT).trained_for is None


def test_recognisers_embed_many_faces_in_bounded_batches(tmp_path):
    """However many faces come, one inference sees at most EMBED_BATCH of them, and the rows are the same."""
    from faceedge.edge.recognize import EMBED_BATCH

    recognizer = open_recognizer(f"onnx:{_mean_colour_model(tmp_path / 'mean.onnx')},threshold=0.3")
    seen = []
    run = recognizer.backend.run
    recognizer.backend.run = lambda feeds: (seen.append(len(next(iter(feeds.values())))), run(feeds))[1]
    faces = np.random.default_rng(0).integers(0, 256, (2 * EMBED_BATCH + 5, 112, 112, 3), dtype=np.uint8)
    together = recognizer.embed(faces)
    assert seen == [EMBED_BATCH, EMBED_BATCH, 5]
    one_by_one = np.concatenate([recognizer.embed(face) for face in faces[:7]])
    assert together.shape == (len(faces), 3) and np.allclose(together[:7], one_by_one, atol=1e-6)


@needs_data
def test_sface_on_opencv_embeds_as_on_onnxruntime(faces):
    from faceedge.edge.recognize import SFaceRecognizer
    from faceedge.trt_engines.backends import open_backend
    from faceedge.trt_engines.models import model_path

    batch = np.stack([face for person in faces.values() for face in person[:2]])
    on_opencv, on_onnxruntime = (SFaceRecognizer(backend=open_backend(model_path("recognizer"), order=(name,))).embed(batch)
                                 for name in ("opencv-cpu", "onnxruntime-cpu"))
    assert len(batch) == 6
    assert np.allclose((on_opencv * on_onnxruntime).sum(axis=1), 1, atol=1e-4)


@needs_data
def test_sface_in_int8_on_opencv_comes_from_the_shipped_ranges_and_embeds_as_float(faces):
    from faceedge.edge.config import load_config
    from faceedge.edge.recognize import SFaceRecognizer
    from faceedge.trt_engines.backends import describe_backends
    from faceedge.trt_engines.base import int8_model_path
    from faceedge.trt_engines.models import model_path, open_model

    if {name for name, ok, _ in describe_backends() if ok} & {"tensorrt", "onnxruntime-cuda"}:
        pytest.skip("a GPU backend comes before OpenCV for the recognizer here")
    if int8_model_path(model_path("recognizer")).is_file():
        pytest.skip("this machine calibrated its own INT8 recognizer, which comes before the shipped ranges")
    backend = open_model("recognizer", load_config(None, ["inference.precision.recognizer=int8"]).inference)
    assert (backend.name, backend.precision) == ("opencv-cpu", "int8")
    batch = np.stack([face for person in faces.values() for face in person[:2]])
    cosine = (SFaceRecognizer(backend=backend).embed(batch) * SFaceRecognizer().embed(batch)).sum(axis=1)
    assert len(batch) == 6 and cosine.min() > 0.95, cosine
