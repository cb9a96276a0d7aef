import numpy as np
import pytest

from faceedge.edge.errors import ModelFileError
from faceedge.trt_engines import backends, info
from faceedge.trt_engines.backends import default_order, open_backend, registered, select_backend
from faceedge.trt_engines.base import BackendRequest, BackendUnavailable, int8_model_path
from faceedge.trt_engines.models import model_path

DEFAULT_ORDER = default_order()


class Fake:
    def __init__(self, name, precision):
        self.name, self.precision, self.input_names = name, precision, ["x"]


class FakePlugin:
    """Stands in for a registered plugin: same name and precisions, opens only if `available`."""

    settings = None

    def __init__(self, name, precisions, order, available):
        self.name, self.precisions, self.order, self.available = name, precisions, order, available

    def describe(self):
        return self.available, "fake"

    def open(self, request, precision):
        if not self.available:
            raise BackendUnavailable(f"{self.name} missing")
        return Fake(self.name, precision)


def fakes(available):
    return {name: FakePlugin(name, plugin.precisions, plugin.order, name in available)
            for name, plugin in registered().items()}


def test_the_plugins_give_the_default_order_and_their_precisions():
    assert DEFAULT_ORDER == ("tensorrt", "onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu", "opencv-cpu")
    assert {name: plugin.precisions for name, plugin in registered().items()} == {
        "tensorrt": ("fp32", "fp16", "int8"), "onnxruntime-cuda": ("fp32", "int8"),
        "torch-cuda": ("fp32", "fp16"), "onnxruntime-cpu": ("fp32", "int8"), "opencv-cpu": ("fp32", "int8")}


@pytest.mark.parametrize("available, expected", [
    ({"tensorrt", "onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu"}, "tensorrt"),
    ({"onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu"}, "onnxruntime-cuda"),
    ({"torch-cuda", "onnxruntime-cpu"}, "torch-cuda"),
    ({"onnxruntime-cpu"}, "onnxruntime-cpu"),
])
def test_falls_through_in_order(tmp_path, available, expected):
    backend, skipped = select_backend(BackendRequest(tmp_path / "m.onnx", "fp32"), DEFAULT_ORDER,
                                      fakes(available))
    assert backend.name == expected
    assert len(skipped) == DEFAULT_ORDER.index(expected)


def test_fp16_prefers_a_native_backend_then_downgrades(tmp_path):
    req = BackendRequest(tmp_path / "m.onnx", "fp16")
    backend, _ = select_backend(req, DEFAULT_ORDER, fakes({"onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu"}))
    assert (backend.name, backend.precision) == ("torch-cuda", "fp16")
    backend, _ = select_backend(req, DEFAULT_ORDER, fakes({"onnxruntime-cpu"}))
    assert (backend.name, backend.precision) == ("onnxruntime-cpu", "fp32")


def test_int8_never_lands_on_torch_and_nothing_available_is_an_error(tmp_path):
    req = BackendRequest(tmp_path / "m.onnx", "int8")
    with pytest.raises(ModelFileError, match="torch-cuda: cannot run int8"):
        select_backend(req, DEFAULT_ORDER, fakes({"torch-cuda"}))
    with pytest.raises(ModelFileError, match="unknown inference backend"):
        select_backend(req, ("openvino",), fakes(set()))


def test_real_open_backend_on_this_machine_records_its_choice(tmp_path):
    backend = open_backend(model_path("recognizer"), model="recognizer-test", precision="fp16")
    assert backend.name in DEFAULT_ORDER
    assert ("recognizer-test", backend.name, backend.precision) in info.model_info()
    out = backend.run({backend.input_names[0]: np.zeros((2, 3, 112, 112), np.float32)})
    assert out[0].shape == (2, 128)


def test_the_recognizer_runs_on_opencv_where_no_gpu_backend_works_and_the_others_on_onnxruntime():
    from faceedge.edge.config import Config
    from faceedge.trt_engines.models import open_model

    inference = Config().inference
    usable = {name for name, ok, _ in backends.describe_backends() if ok}
    if usable & {"tensorrt", "onnxruntime-cuda", "torch-cuda"}:
        pytest.skip("a GPU backend works here, and comes first for every model")
    assert open_model("recognizer", inference).name == "opencv-cpu"
    assert open_model("selection", inference).name == "onnxruntime-cpu"


def test_a_file_opencv_cannot_read_passes_to_the_next_backend(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    with pytest.raises(BackendUnavailable, match="OpenCV cannot load broken.onnx"):
        registered()["opencv-cpu"].open(BackendRequest(broken), "fp32")


def test_int8_without_calibration_names_the_fix(tmp_path):
    float_onnx = tmp_path / "m.onnx"
    float_onnx.write_bytes(b"")
    assert int8_model_path(float_onnx).name == "m.int8.onnx"
    with pytest.raises(ModelFileError, match="build-engines --precision int8"):
        open_backend(float_onnx, precision="int8", order=("onnxruntime-cpu",))


def test_model_info_gauge():
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    info.register_model_info(registry)
    info.record("gauge-test", "onnxruntime-cpu", "fp32")
    labels = {"model": "gauge-test", "backend": "onnxruntime-cpu", "precision": "fp32"}
    assert registry.get_sample_value("faceedge_model_info", labels) == 1
    info.record("gauge-test", "onnxruntime-cpu", "int8")
    assert registry.get_sample_value("faceedge_model_info", labels) is None
    assert registry.get_sample_value("faceedge_model_info", {**labels, "precision": "int8"}) == 1


def test_a_default_yunet_detector_gives_tensorrt_its_free_height_and_width(monkeypatch):
    # TensorRT's default profile refuses free non-batch dims, so the detector must bring its own.
    from faceedge.edge.detect import YuNetDetector
    from faceedge.trt_engines.engine_build import default_profile

    opened = {}

    def record(path, **kwargs):
        opened.update(kwargs, path=path)
        return Fake("onnxruntime-cpu", "fp32")

    monkeypatch.setattr(backends, "open_backend", record)
    YuNetDetector(threads=1)
    with pytest.raises(ModelFileError, match="free non-batch dims"):
        default_profile(opened["path"], 32)
    ((_, (low, _, high)),) = opened["profile"].items()
    assert low[2:] < high[2:] and high[0] == 32



class NpuPlugin:
    """A new backend, defined here: it runs the ONNX Runtime CPU session under its own name."""

    name = "fake-npu"
    precisions = ("fp32", "fp16")
    order = 5  # before TensorRT
    settings = None

    def describe(self):
        return True, "a fake NPU"

    def open(self, request, precision):
        inner = registered()["onnxruntime-cpu"].open(request, "fp32")
        inner.name, inner.precision = self.name, precision
        return inner


@pytest.fixture
def npu(monkeypatch):
    monkeypatch.setattr(backends, "_PLUGINS", dict(backends._PLUGINS))  # the registration ends with the test
    backends.register(NpuPlugin())


def test_a_registered_plugin_is_chosen_first_by_auto_and_is_a_valid_config_backend(npu, caplog):
    from faceedge.edge.config import load_config
    from faceedge.edge.doctor import backend_report

    assert default_order()[0] == "fake-npu"
    with caplog.at_level("INFO", logger="faceedge.backends"):
        backend = open_backend(model_path("recognizer"), model="npu-test", precision="fp16", threads=1)
    assert (backend.name, backend.precision) == ("fake-npu", "fp16")
    assert "model npu-test runs on fake-npu at fp16" in caplog.text
    assert backend.run({backend.input_names[0]: np.zeros((1, 3, 112, 112), np.float32)})[0].shape == (1, 128)
    assert backend_report()[0] == "backend fake-npu: available - a fake NPU"
    config = load_config(None, ["inference.backend=fake-npu"])
    assert config.inference.backend == "fake-npu" and config.inference.order[0] == "fake-npu"
    with pytest.raises(ValueError, match="already registered"):
        backends.register(NpuPlugin())


NPU_MODULE = """
from pydantic import BaseModel, Field


class NpuSettings(BaseModel):
    npu_lanes: int = Field(2, ge=1)


class Npu:
    name = "fake-npu"
    precisions = ("fp32",)
    order = 35  # between torch-cuda (30) and onnxruntime-cpu (40)
    settings = NpuSettings

    def describe(self):
        return False, "no NPU here"

    def open(self, request, precision):
        raise NotImplementedError


PLUGIN = Npu()
"""

DISCOVER = """
import json, sys
import faceedge.trt_engines.plugins as plugins
plugins.__path__.append(sys.argv[1])  # as if the file were in trt_engines/plugins/
from faceedge.edge.config import load_config
from faceedge.edge.errors import ConfigError
from faceedge.trt_engines.backends import default_order, describe_backends, settings_of
config = load_config(None, ["inference.npu_lanes=8"])
try:
    load_config(None, ["inference.npu_lanes=0"])
except ConfigError as exc:
    refused = str(exc)
print(json.dumps({"order": default_order(), "config_order": config.inference.order,
                  "settings": settings_of(config.inference), "refused": refused, "rows": describe_backends()}))
"""


@pytest.mark.slow  # a fresh interpreter, so the registry is built anew
def test_one_new_plugin_file_is_discovered_with_its_config_keys(tmp_path):
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "fake_npu.py").write_text(NPU_MODULE)
    out = subprocess.run([sys.executable, "-c", DISCOVER, str(tmp_path)], capture_output=True, text=True,
                         env=os.environ, timeout=120, check=True).stdout
    found = json.loads(out)
    order = ["tensorrt", "onnxruntime-cuda", "torch-cuda", "fake-npu", "onnxruntime-cpu", "opencv-cpu"]
    assert found["order"] == found["config_order"] == order
    assert found["settings"] == {"engine_cache": None, "threads": 1, "opencv_threads": 1, "npu_lanes": 8}
    assert "inference.npu_lanes" in found["refused"]
    assert found["rows"][3] == ["fake-npu", False, "no NPU here"]


def test_open_backend_refuses_a_setting_no_plugin_declares():
    with pytest.raises(TypeError, match="thread"):
        open_backend(model_path("recognizer"), thread=1)
