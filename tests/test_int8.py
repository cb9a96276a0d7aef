"""INT8 calibration end to end on real face data: the QDQ model runs and agrees with FP32."""

from pathlib import Path

import numpy as np
import onnx
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def splits():
    if not (DATA / "identities").is_dir():
        pytest.skip(f"shared face data not found at {DATA}")
    from calibration.dataset import grouped_frames, split_sets
    from edge.detect import YuNetDetector

    groups = grouped_frames([DATA / "identities"], 60)
    return split_sets(groups, YuNetDetector(threads=1), max_faces=24)


def test_splits_are_by_identity(splits):
    from calibration.dataset import split_of

    names = [p.name for p in (DATA / "identities").iterdir() if p.is_dir()]
    assert {split_of(n) for n in names} == {"fit", "choose", "report"}
    assert all(len(s.faces.tracks) > 0 for s in splits.values())


def test_qdq_scorer_runs_and_keeps_the_best_face(tmp_path, splits):
    import torch

    from calibration.calibrate import calibrate_model
    from calibration.standin import scorer_onnx
    from edge.face_input import SCORER_INPUTS
    from trt_engines.backends import open_backend

    torch.set_num_threads(1)
    float_path = scorer_onnx(tmp_path / "selection.onnx", splits["fit"].faces.crops, steps=40)
    result = calibrate_model("selection", float_path, splits, methods=("entropy", "percentile"), max_fit=64,
                             threads=1)
    qdq = Path(result["qdq_onnx"])
    nodes = onnx.load(str(qdq)).graph
    quant = [n for n in nodes.node if n.op_type == "QuantizeLinear"]
    assert quant, "no QuantizeLinear nodes: not a QDQ model"
    zero_points = {i.name: i for i in nodes.initializer}
    # Symmetric int8 activations (zero point 0) are what TensorRT's explicit quantisation needs.
    for node in quant:
        zp = onnx.numpy_helper.to_array(zero_points[node.input[2]])
        assert zp.dtype == np.int8 and not zp.any()
    backend = open_backend(float_path, precision="int8", order=("onnxruntime-cpu",), model="selection-test")
    assert backend.precision == "int8"
    size = SCORER_INPUTS["selection"].size
    out = backend.run({"input": np.zeros((5, 3, size, size), np.float32)})
    assert out[0].shape == (5, 1)
    report = result["report_split"]
    assert result["method"] in ("entropy", "percentile 99.999", "percentile 99.99")
    assert set(result["choose_split"]) == {"entropy", "percentile 99.999", "percentile 99.99"}
    assert report["best_face"] >= 0.97, report
    assert report["rank_correlation"] >= 0.95, report


def test_first_layer_and_head_stay_float():
    import onnx
    from onnx import helper

    from calibration.quantize import float_nodes

    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="mid"),
             helper.make_node("Conv", ["b", "w2"], ["c"], name="body"),
             helper.make_node("GlobalAveragePool", ["c"], ["d"], name="pool"),
             helper.make_node("Gemm", ["d", "w3"], ["e"], name="fc"),
             helper.make_node("Sigmoid", ["e"], ["y"], name="sigmoid")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    assert set(float_nodes(helper.make_model(graph))) == {"first", "fc", "sigmoid"}
    assert set(float_nodes(helper.make_model(graph), leading=2)) == {"first", "body", "fc", "sigmoid"}
    assert set(float_nodes(helper.make_model(graph), leading=0)) == {"fc", "sigmoid"}


def test_calibration_candidates_and_per_model_settings():
    from calibration.calibrate import candidates_of
    from edge.config import load_config

    assert candidates_of(("entropy", "percentile"), (99.999, 99.99)) == [
        ("entropy", "entropy", 99.999), ("percentile 99.999", "percentile", 99.999),
        ("percentile 99.99", "percentile", 99.99)]
    calibration = load_config(None, ["inference.calibration.max_fit_items=32"]).inference.calibration
    assert calibration.max_fit_items_by_model.get("selection", calibration.max_fit_items) == 480
    assert calibration.max_fit_items_by_model.get("recognizer", calibration.max_fit_items) == 32
    assert calibration.leading_float_layers.get("selection", 1) == 2
    assert calibration.leading_float_layers.get("detector", 1) == 1


def test_quantizing_leaves_the_working_directory_clean(tmp_path, monkeypatch):
    import numpy as np

    from calibration.quantize import quantize_qdq
    from trt_engines.models import model_path

    # YuNet's free H, W sends ORT's pre-processing down its path that writes scratch files.
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    out = quantize_qdq(model_path("detector"), tmp_path / "det.int8.onnx", "input",
                       [np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)])
    assert out.is_file()
    assert list(work.iterdir()) == []


class RecordingBackend:
    """Stands in for a backend and keeps what the runtime wrapper sent it."""

    input_names = ["input"]

    def __init__(self, output):
        self.output, self.fed = output, None

    def run(self, feeds):
        self.fed = feeds["input"]
        return [self.output(len(self.fed))]


def test_calibration_feeds_every_face_model_what_the_runtime_feeds_it(splits):
    from calibration.feeds import face_inputs
    from edge.enhance import SuperResolver
    from edge.face_input import SCORER_INPUTS
    from edge.recognize import SFaceRecognizer
    from edge.select import Candidate, LearnedScorer
    from trt_engines.models import MODELS, input_spec, model_path

    crops = splits["report"].faces.crops[:6]
    candidates = [Candidate(crop, None, (0, 0)) for crop in crops]
    for name in ("selection", "quality"):
        backend = RecordingBackend(lambda n: np.zeros((n, 1), np.float32))
        LearnedScorer(name, f"weights:{name}.onnx", SCORER_INPUTS[name], backend=backend).score(candidates)
        _, item = input_spec(model_path(name), MODELS[name])
        np.testing.assert_array_equal(face_inputs(name, crops, item), backend.fed)

    backend = RecordingBackend(lambda n: np.zeros((n, 3, 112, 112), np.float32))
    resolver = SuperResolver(backend=backend)
    resolver.restore(np.stack([resolver.lowres(crop) for crop in crops]))
    _, item = input_spec(model_path("sr"), MODELS["sr"])
    np.testing.assert_array_equal(face_inputs("sr", crops, item), backend.fed)

    recognizer = SFaceRecognizer()
    recognizer.backend = backend = RecordingBackend(lambda n: np.ones((n, 128), np.float32))
    recognizer.input_name = "input"
    recognizer.embed(np.stack(crops))
    np.testing.assert_array_equal(face_inputs("recognizer", crops, (3, 112, 112)), backend.fed)
