"""SCRFD through the backend layer, decoded here: the same detections as insightface's SCRFD class.

No SCRFD pack ships with the test data, so the models are small random networks with SCRFD's interface
(input 1x3xHxW, per stride 8/16/32 two anchors' scores, box distances and 5 landmarks, in insightface's
output order), in both output layouts: flattened to anchors x values, and with a batch axis.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceedge.edge.detect import ScrfdDetector
from faceedge.edge.errors import ModelFileError

STRIDES = (8, 16, 32)
ANCHORS = 2
THRESHOLD = 0.35  # about 1 % of these networks' anchors score above it


def scrfd_onnx(path, batch_axis: bool, landmarks: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    nodes, inits, outputs = [], [], []
    heads = [("score", 1, "Sigmoid", -1.5), ("bbox", 4, "Relu", 1.0)] + ([("kps", 10, None, 0.0)] if landmarks else [])
    for head, width, activation, bias in heads:
        for stride in STRIDES:
            name = f"{head}_{stride}"
            weight = rng.normal(0, 1 / np.sqrt(3 * stride * stride), (ANCHORS * width, 3, stride, stride))
            inits += [numpy_helper.from_array(weight.astype(np.float32), f"{name}_w"),
                      numpy_helper.from_array(np.full(ANCHORS * width, bias, np.float32), f"{name}_b")]
            nodes.append(helper.make_node("Conv", ["input.1", f"{name}_w", f"{name}_b"], [f"{name}_conv"],
                                          kernel_shape=[stride, stride], strides=[stride, stride]))
            last = f"{name}_conv"
            if activation:
                nodes.append(helper.make_node(activation, [last], [f"{name}_act"]))
                last = f"{name}_act"
            nodes.append(helper.make_node("Transpose", [last], [f"{name}_nhwc"], perm=[0, 2, 3, 1]))
            shape = [1, -1, width] if batch_axis else [-1, width]
            inits.append(numpy_helper.from_array(np.array(shape, np.int64), f"{name}_shape"))
            nodes.append(helper.make_node("Reshape", [f"{name}_nhwc", f"{name}_shape"], [name]))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                         [1, "anchors", width] if batch_axis else ["anchors", width]))
    graph = helper.make_graph(nodes, "scrfd", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT,
                                                                             [1, 3, "?", "?"])], outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def images():
    """A landscape frame and a portrait one (scaled by height into the square input), both noise."""
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((360, 640, 3), (700, 500, 3))]


def described(found):
    return [(d.bbox.tolist(), d.landmarks.tolist(), d.score) for d in found]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEEDGE_CACHE", str(tmp_path / "cache"))


def open_scrfd(path):
    from faceedge.trt_engines.backends import open_backend
    from faceedge.trt_engines.models import batched_onnx

    backend = open_backend(batched_onnx(str(path), dynamic_hw=True), order=("onnxruntime-cpu",), threads=1)
    return ScrfdDetector(str(path), backend, score_threshold=THRESHOLD)


@pytest.mark.parametrize("batch_axis", [False, True])
def test_scrfd_detections_match_insightface(tmp_path, cache, batch_axis):
    insightface = pytest.importorskip("insightface", reason="insightface, the reference, is in the dev extra")
    if int(insightface.__version__.split(".")[0]) < 2:
        pytest.skip(f"insightface {insightface.__version__} orders equal scores unlike insightface 2 and ScrfdDetector, "
                    "and these networks give many (every anchor in the letterbox padding scores the same)")
    from insightface.model_zoo import scrfd

    path = scrfd_onnx(tmp_path / "scrfd.onnx", batch_axis)
    ours = open_scrfd(path)
    assert ours.batched is batch_axis
    reference = scrfd.SCRFD(model_file=str(path))
    reference.prepare(ctx_id=-1, input_size=(640, 640), det_thresh=THRESHOLD)
    for image in images():
        boxes, points = reference.detect(image)
        found = ours.detect(image)
        assert len(found) == len(boxes) > 10
        np.testing.assert_allclose([d.bbox for d in found], boxes[:, :4], atol=1e-3)
        np.testing.assert_allclose([d.score for d in found], boxes[:, 4], atol=1e-5)
        np.testing.assert_allclose([d.landmarks for d in found], points, atol=1e-3)
    together = ours.detect_batch(images())
    assert [described(found) for found in together] == [described(ours.detect(image)) for image in images()]


def test_a_scrfd_model_without_landmarks_is_refused_by_name(tmp_path, cache):
    path = scrfd_onnx(tmp_path / "nokps.onnx", batch_axis=True, landmarks=False)
    with pytest.raises(ModelFileError, match="nokps.onnx: 6 outputs, not an SCRFD model with landmarks"):
        open_scrfd(path)


def test_the_pipeline_opens_scrfd_through_the_configured_backend_and_precision(tmp_path, cache):
    from faceedge.edge.config import load_config
    from faceedge.edge.pipeline import make_detector
    from faceedge.trt_engines import info

    path = scrfd_onnx(tmp_path / "scrfd.onnx", batch_axis=True)
    config = load_config(None, ["detect.kind=scrfd", f"detect.model={path}", f"detect.score_threshold={THRESHOLD}",
                                "inference.order=[onnxruntime-cpu]", "inference.precision.detector=fp16"])
    detector = make_detector(config)
    assert isinstance(detector, ScrfdDetector) and detector.backend.name == "onnxruntime-cpu"
    assert ("detector", "onnxruntime-cpu", "fp32") in info.model_info()  # fp16 asked, nearest it has
    assert described(detector.detect(images()[0])) == described(open_scrfd(path).detect(images()[0]))


def test_the_tensorrt_profile_of_scrfd_is_its_input_size_whatever_the_frames(tmp_path, cache):
    from faceedge.edge.config import load_config
    from faceedge.edge.detector_input import SCRFD_FREE_SIZE
    from faceedge.trt_engines.models import batched_onnx, trt_profile

    path = scrfd_onnx(tmp_path / "scrfd.onnx", batch_axis=True)
    width, height = SCRFD_FREE_SIZE  # its input size is free
    for input_size in (480, 1280):
        config = load_config(None, ["detect.kind=scrfd", f"detect.model={path}", f"detect.input_size={input_size}"])
        (low, opt, high), = trt_profile("detector", batched_onnx(str(path), dynamic_hw=True), 8, config).values()
        assert low[1:] == opt[1:] == high[1:] == (3, height, width)
