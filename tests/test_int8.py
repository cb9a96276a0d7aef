"""INT8 calibration end to end on real face data: the QDQ model runs and agrees with FP32."""

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from faceedge.edge.errors import ModelFileError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def splits():
    if not (DATA / "identities").is_dir():
        pytest.skip(f"shared face data not found at {DATA}")
    from faceedge.calibration.dataset import grouped_frames, split_sets
    from faceedge.edge.detect import YuNetDetector

    groups = grouped_frames([DATA / "identities"], 60)
    return split_sets(groups, YuNetDetector(threads=1), max_faces=24)


def test_splits_are_by_identity(splits):
    from faceedge.calibration.dataset import split_of

    names = [p.name for p in (DATA / "identities").iterdir() if p.is_dir()]
    assert {split_of(n) for n in names} == {"fit", "choose", "report"}
    assert all(len(s.faces.tracks) > 0 for s in splits.values())


def test_report_fraction_sets_the_share_of_identities_that_only_report():
    from faceedge.calibration.dataset import split_of

    names = [f"person_{i}" for i in range(4000)]
    for report, fit in ((0.3, 0.5), (0.5, 5 / 14)):
        splits = [split_of(n, report) for n in names]
        assert abs(splits.count("report") / len(names) - report) < 0.03
        assert abs(splits.count("fit") / len(names) - fit) < 0.03


def test_held_out_calibration_reads_only_identities_never_trained_on():
    if not (DATA / "identities").is_dir():
        pytest.skip(f"shared face data not found at {DATA}")
    from faceedge.calibration.dataset import grouped_frames
    from faceedge.edge.identity_split import HOLDOUT_FRACTION, holdout_identity, split_identities

    names = sorted(p.name for p in (DATA / "identities").iterdir() if p.is_dir())
    trained, held_out = split_identities(names, HOLDOUT_FRACTION)
    groups = grouped_frames([DATA / "identities"], 1000,
                            keep_identity=lambda name: holdout_identity(name, HOLDOUT_FRACTION))
    assert held_out and trained
    assert {group.split("/")[-1] for group in groups} == set(held_out)


@pytest.mark.slow
def test_qdq_scorer_runs_and_keeps_the_best_face(tmp_path, splits):
    import torch

    from faceedge.calibration.calibrate import calibrate_model
    from faceedge.calibration.standin import scorer_onnx
    from faceedge.edge.face_input import SELECTION_INPUT
    from faceedge.trt_engines.backends import open_backend

    torch.set_num_threads(1)
    float_path = scorer_onnx(tmp_path / "selection.onnx", splits["fit"].faces.crops, steps=40)
    result = calibrate_model("selection", float_path, splits, methods=("entropy", "percentile"), max_fit=64,
                             threads=1)
    qdq = Path(result["qdq_onnx"])
    nodes = onnx.load(str(qdq)).graph
    quant = [n for n in nodes.node if n.op_type == "QuantizeLinear"]
    assert quant, "no QuantizeLinear nodes: not a QDQ model"
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in nodes.initializer}
    assert all(inits[node.input[2]].dtype == np.uint8 for node in quant)  # activations: uint8 over their range
    weight_dq = [n for n in nodes.node if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None
                 and inits[n.input[0]].dtype == np.int8]
    assert weight_dq and all(not inits[n.input[2]].any() for n in weight_dq)  # weights: symmetric int8
    backend = open_backend(float_path, precision="int8", order=("onnxruntime-cpu",), model="selection-test")
    assert backend.precision == "int8"
    size = SELECTION_INPUT.size
    out = backend.run({"input": np.zeros((5, 3, size, size), np.float32)})
    assert out[0].shape == (5, 1)
    report = result["report_split"]
    assert result["method"] in ("entropy", "percentile 99.999", "percentile 99.99")
    assert set(result["choose_split"]) == {"entropy", "percentile 99.999", "percentile 99.99"}
    assert report["best_face"] >= 0.97, report
    assert report["rank_correlation"] >= 0.95, report
    # TensorRT's re-encoding of the same scales runs too, and still ranks the faces like FP32.
    assert result["tensorrt_form_report_split"]["rank_correlation"] >= 0.95, result["tensorrt_form_report_split"]


def _tiny_qdq(path: Path, activation_zero: int) -> None:
    """x -> Q/DQ (uint8) -> MaxPool -> Q/DQ (same parameters) -> Conv with int8 weights and an int32 bias
    -> + a constant quantised to uint8, as ORT writes such graphs."""
    from onnx import TensorProto, helper, numpy_helper

    tensors = {"x_scale": np.float32(0.02), "x_zero": np.uint8(activation_zero),
               "w_q": np.array([[[[3]], [[-5]]]], np.int8), "w_scale": np.array([0.01], np.float32),
               "w_zero": np.array([0], np.int8), "b_q": np.array([250], np.int32),
               "b_scale": np.array([0.0002], np.float32), "b_zero": np.array([0], np.int32),
               "c_q": np.uint8(200), "c_scale": np.float32(0.01), "c_zero": np.uint8(100)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"]),
             helper.make_node("MaxPool", ["x_dq"], ["p"], kernel_shape=[1, 1]),
             helper.make_node("QuantizeLinear", ["p", "x_scale", "x_zero"], ["p_q"]),
             helper.make_node("DequantizeLinear", ["p_q", "x_scale", "x_zero"], ["p_dq"]),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zero"], ["b"], axis=0),
             helper.make_node("Conv", ["p_dq", "w", "b"], ["conv"]),
             helper.make_node("DequantizeLinear", ["c_q", "c_scale", "c_zero"], ["c"]),
             helper.make_node("Add", ["conv", "c"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in tensors.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))


@pytest.mark.parametrize("activation_zero", [0, 100])
def test_tensorrt_form_recodes_the_calibrated_ranges(tmp_path, activation_zero):
    import onnxruntime as ort

    from faceedge.trt_engines.tensorrt_qdq import tensorrt_qdq

    source = tmp_path / "tiny.int8.onnx"
    _tiny_qdq(source, activation_zero)
    target = tensorrt_qdq(source)
    assert target.name == "tiny.int8.trt1.onnx"
    graph = onnx.load(str(target)).graph
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    # The uint8 range [-z*s, (255-z)*s] becomes symmetric int8 covering its larger end.
    bound = max(activation_zero, 255 - activation_zero) * 0.02
    assert inits["x_scale"] == pytest.approx(bound / 127) and inits["x_zero"].dtype == np.int8
    assert not inits["x_zero"].any()
    # Constants become the floats they stood for: the int32 bias 250 * 0.0002, the uint8 (200 - 100) * 0.01.
    assert "b_q" not in inits and inits["b"] == pytest.approx([0.05]) and inits["c"] == pytest.approx(1.0)
    assert all(i.dtype != np.int32 and i.dtype != np.uint8 for i in inits.values())
    # The uint8 clamp at the range's low end (a ReLU that ORT removed, when the zero point is 0) is explicit
    # where values enter the range; MaxPool of dequantized values is inside it already.
    producer = {n.output[0]: n for n in graph.node}
    inputs_of_q = [producer[q.input[0]].op_type for q in graph.node if q.op_type == "QuantizeLinear"]
    assert inputs_of_q == ["Relu" if activation_zero == 0 else "Clip", "MaxPool"]
    x = np.linspace(0, 2, 8, dtype=np.float32).reshape(1, 2, 2, 2)
    outputs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
               for p in (source, target)]
    exact = 0.03 * x[:, :1] - 0.05 * x[:, 1:] + 0.05 + 1.0  # weights 3*0.01 and -5*0.01, bias, constant
    inside = np.maximum(x[:, :1], x[:, 1:]) <= (255 - activation_zero) * 0.02
    for out in outputs:  # both encodings are within their rounding of the float result inside the range
        assert np.abs(out - exact)[inside].max() <= 0.08 * bound / 127 + 1e-6


@pytest.mark.slow
def test_detector_calibration_reproduces_the_fp32_detections(tmp_path, splits):
    """The detector path: raw heads of the FP32 reference and of each candidate, decoded to boxes."""
    import shutil

    from faceedge.calibration.calibrate import calibrate_model
    from faceedge.trt_engines.models import model_path

    float_path = tmp_path / "detector.onnx"
    shutil.copy(model_path("detector"), float_path)
    result = calibrate_model("detector", float_path, splits, methods=("percentile",), percentiles=(99.999,),
                             max_fit=8, threads=1)
    for report in (result["choose_split"]["percentile 99.999"], result["report_split"],
                   result["tensorrt_form_report_split"]):
        assert report["frames"] > 0 and report["fp32_detections"] > 0, report
        assert report["recall_of_fp32"] >= 0.9 and report["precision_vs_fp32"] >= 0.9, report


def test_first_layer_and_head_stay_float():
    import onnx
    from onnx import helper

    from faceedge.trt_engines.int8_ranges import float_nodes

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
    from faceedge.calibration.calibrate import candidates_of
    from faceedge.edge.config import load_config

    assert candidates_of(("entropy", "percentile"), (99.999, 99.99)) == [
        ("entropy", "entropy", 99.999), ("percentile 99.999", "percentile", 99.999),
        ("percentile 99.99", "percentile", 99.99)]
    calibration = load_config(None, ["inference.calibration.max_fit_items=32"]).inference.calibration
    assert calibration.max_fit_items_by_model.get("selection", calibration.max_fit_items) == 480
    assert calibration.max_fit_items_by_model.get("recognizer", calibration.max_fit_items) == 256
    assert calibration.max_fit_items_by_model.get("quality", calibration.max_fit_items) == 32
    assert calibration.leading_float_layers.get("selection", 1) == 3
    assert calibration.leading_float_layers.get("detector", 1) == 1


@pytest.mark.slow
def test_quantizing_leaves_the_working_directory_clean(tmp_path, monkeypatch):
    import numpy as np

    from faceedge.calibration.quantize import quantize_candidates
    from faceedge.trt_engines.models import model_path

    # YuNet's free H, W sends ORT's pre-processing down its path that writes scratch files.
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    frames = [np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)]
    out, = quantize_candidates(model_path("detector"), "input", frames,
                               [(tmp_path / "det.int8.onnx", "percentile", 99.99)])
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


class RecordingDetectorBackend:
    """A real backend that keeps what it was fed."""

    def __init__(self, inner):
        self.inner, self.input_names, self.fed = inner, inner.input_names, None

    def run(self, feeds):
        self.fed = feeds[self.input_names[0]]
        return self.inner.run(feeds)


def test_calibration_feeds_every_model_what_the_runtime_feeds_it(splits):
    import cv2

    from faceedge.calibration.calibrate import model_inputs
    from faceedge.calibration.dataset import FaceSet, Split
    from faceedge.edge.detect import YuNetDetector
    from faceedge.edge.enhance import SuperResolver
    from faceedge.edge.recognize import SFaceRecognizer
    from faceedge.edge.select import Candidate, LearnedScorer
    from faceedge.trt_engines.models import input_spec, model_path
    from faceedge.trt_engines.model_registry import MODELS

    crops = splits["report"].faces.crops[:6]
    faces = Split(faces=FaceSet(crops=crops))

    def calibration_input(name, split=faces):
        return model_inputs(name, input_spec(model_path(name), MODELS[name].shapes())[1], split)

    candidates = [Candidate(crop, None, (0, 0)) for crop in crops]
    for name in ("selection", "quality"):
        backend = RecordingBackend(lambda n: np.zeros((n, 1), np.float32))
        LearnedScorer(name, f"weights:{name}.onnx", MODELS[name].prepare, backend=backend).score(candidates)
        np.testing.assert_array_equal(calibration_input(name), backend.fed)

    backend = RecordingBackend(lambda n: np.zeros((n, 3, 112, 112), np.float32))
    resolver = SuperResolver(backend=backend)
    resolver.restore(np.stack([resolver.lowres(crop) for crop in crops]))
    np.testing.assert_array_equal(calibration_input("sr"), backend.fed)

    recognizer = SFaceRecognizer()
    recognizer.backend = backend = RecordingBackend(lambda n: np.ones((n, 128), np.float32))
    recognizer.input_name = "input"
    recognizer.embed(np.stack(crops))
    np.testing.assert_array_equal(calibration_input("recognizer"), backend.fed)

    # A 16:9 frame: calibration scales it to the detector input, as the pipeline's decoder does.
    frame = cv2.resize(splits["report"].frames[0], (1280, 720), interpolation=cv2.INTER_AREA)
    detector = YuNetDetector(threads=1)
    recording = RecordingDetectorBackend(detector.backend)
    detector.backend = recording
    detector.detect(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(calibration_input("detector", Split(frames=[frame])), recording.fed)


def test_paired_speedup_alternates_calls_and_compares_total_time(monkeypatch):
    from faceedge.edge.commands import bench_models

    clock = [0.0]
    monkeypatch.setattr(bench_models.time, "perf_counter", lambda: clock[0])

    class Fake:
        def __init__(self, seconds_per_call):
            self.seconds_per_call, self.calls = seconds_per_call, 0

        def run(self, feed):
            clock[0] += self.seconds_per_call
            self.calls += 1

    fp32, int8 = Fake(0.004), Fake(0.002)
    ratio = bench_models.paired_speedup(fp32, int8, "x", (3, 8, 8), 4, 0.1, np.random.default_rng(0))
    assert ratio == pytest.approx(2.0) and fp32.calls == int8.calls > 3


def test_best_face_agreement_counts_tracks_and_gives_a_wilson_interval():
    from faceedge.calibration.agreement import score_agreement

    fp32 = np.array([0.1, 0.9, 0.5, 0.7, 0.2, 0.3, 0.4])
    # Track 1 keeps its best crop (index 1), track 2 flips (3 -> 2), the one-crop track is not a choice.
    int8 = np.array([0.1, 0.8, 0.75, 0.7, 0.2, 0.3, 0.4])
    report = score_agreement([fp32], [int8], [[0, 1], [2, 3, 4], [5]])
    assert report["tracks"] == 2 and report["best_face_kept"] == 1 and report["best_face"] == 0.5
    # The flip lost 0.7 - 0.5 of FP32's score; FP32's best-over-second margins are 0.8 and 0.2.
    assert report["flip_fp32_gap_median"] == pytest.approx(0.2) and report["flip_fp32_gap_max"] == pytest.approx(0.2)
    assert report["fp32_margin_median"] == pytest.approx(0.5)
    # Wilson 95 %: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = 0.5, n = 2, z = 1.96
    z, n, p = 1.959964, 2, 0.5
    half = z * np.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
    expected = [(p + z ** 2 / (2 * n) - half) / (1 + z ** 2 / n), (p + z ** 2 / (2 * n) + half) / (1 + z ** 2 / n)]
    assert np.allclose(report["best_face_interval95"], expected, atol=1e-5)


@pytest.mark.slow
def test_calibration_keeps_its_ranges_and_they_make_the_copy_opencv_reads(tmp_path):
    import cv2

    from faceedge.calibration.quantize import quantize_candidates
    from faceedge.trt_engines.int8_ranges import from_ranges, ranges_path, ranges_settings
    from faceedge.trt_engines.models import model_path

    faces = [np.random.default_rng(0).uniform(0, 1, (4, 3, 64, 192)).astype(np.float32)]
    out, = quantize_candidates(model_path("quality"), "faces", faces,
                               [(tmp_path / "quality.int8.onnx", "minmax", 99.99)], leading_float=1)
    assert ranges_settings(ranges_path(out)) == {"method": "minmax", "percentile": 99.99, "leading_float_layers": 1}
    model = tmp_path / "quality.onnx"
    shutil.copyfile(model_path("quality"), model)
    qoperator = from_ranges(model, ranges_path(out), "qoperator")
    assert "QLinearConv" in {node.op_type for node in onnx.load(str(qoperator)).graph.node}
    assert from_ranges(model, ranges_path(out), "qoperator") == qoperator  # made once, then cached
    net = cv2.dnn.readNetFromONNX(str(qoperator))
    net.setInput(faces[0][:1])
    assert np.isfinite(net.forward()).all()


def test_an_onnxruntime_that_cannot_read_ranges_is_named_with_the_fix(tmp_path, monkeypatch):
    from faceedge.trt_engines import int8_ranges
    from faceedge.trt_engines.backends import open_backend
    from faceedge.trt_engines.models import model_path

    monkeypatch.setattr(int8_ranges, "reads_ranges", lambda: False)
    model, ranges = tmp_path / "quality.onnx", tmp_path / "r.json"
    shutil.copyfile(model_path("quality"), model)
    ranges.write_text("{}")
    with pytest.raises(ModelFileError, match=r"onnxruntime >= 1\.27 .*precision\.m: fp16"):
        open_backend(model, precision="int8", order=("opencv-cpu", "onnxruntime-cpu"), model="m", int8_ranges=ranges)


def test_trained_identities_fit_and_choose_and_only_held_out_ones_report(tmp_path):
    import cv2

    from faceedge.calibration.dataset import identity_groups
    from faceedge.edge.identity_split import HOLDOUT_FRACTION, holdout_identity

    people = tmp_path / "people"
    names = [f"person_{i}" for i in range(40)]
    for name in names:
        (people / name).mkdir(parents=True)
        cv2.imwrite(str(people / name / "a.png"), np.full((8, 8, 3), 128, np.uint8))
    groups, assign = identity_groups([people], 200, "trained")
    splits = {group.split("/")[-1]: assign(group) for group in groups}
    assert set(splits) == set(names)
    held_out = {name for name in names if holdout_identity(name, HOLDOUT_FRACTION)}
    assert 0 < len(held_out) < len(names)
    assert {name for name, split in splits.items() if split == "report"} == held_out
    assert {splits[name] for name in set(names) - held_out} == {"fit", "choose"}
