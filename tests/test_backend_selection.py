import numpy as np
import pytest

from faceedge.edge.errors import ModelFileError
from faceedge.trt_engines import info
from faceedge.trt_engines.backends import (DEFAULT_ORDER, BackendRequest, BackendUnavailable, int8_model_path,
                                  open_backend, select_backend)
from faceedge.trt_engines.models import model_path


class Fake:
    def __init__(self, name, precision):
        self.name, self.precision, self.input_names = name, precision, ["x"]


def factories(available):
    def make(name):
        def factory(req, precision):
            if name not in available:
                raise BackendUnavailable(f"{name} missing")
            return Fake(name, precision)
        return factory
    return {name: make(name) for name in DEFAULT_ORDER}


@pytest.mark.parametrize("available, expected", [
    ({"tensorrt", "onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu"}, "tensorrt"),
    ({"onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu"}, "onnxruntime-cuda"),
    ({"torch-cuda", "onnxruntime-cpu"}, "torch-cuda"),
    ({"onnxruntime-cpu"}, "onnxruntime-cpu"),
])
def test_falls_through_in_order(tmp_path, available, expected):
    backend, skipped = select_backend(BackendRequest(tmp_path / "m.onnx", "fp32"), DEFAULT_ORDER,
                                      factories(available))
    assert backend.name == expected
    assert len(skipped) == DEFAULT_ORDER.index(expected)


def test_fp16_prefers_a_native_backend_then_downgrades(tmp_path):
    req = BackendRequest(tmp_path / "m.onnx", "fp16")
    backend, _ = select_backend(req, DEFAULT_ORDER, factories({"onnxruntime-cuda", "torch-cuda", "onnxruntime-cpu"}))
    assert (backend.name, backend.precision) == ("torch-cuda", "fp16")
    backend, _ = select_backend(req, DEFAULT_ORDER, factories({"onnxruntime-cpu"}))
    assert (backend.name, backend.precision) == ("onnxruntime-cpu", "fp32")


def test_int8_never_lands_on_torch_and_nothing_available_is_an_error(tmp_path):
    req = BackendRequest(tmp_path / "m.onnx", "int8")
    with pytest.raises(ModelFileError, match="torch-cuda: cannot run int8"):
        select_backend(req, DEFAULT_ORDER, factories({"torch-cuda"}))
    with pytest.raises(ModelFileError, match="unknown inference backend"):
        select_backend(req, ("openvino",), factories(set()))


def test_real_open_backend_on_this_machine_records_its_choice(tmp_path):
    backend = open_backend(model_path("recognizer"), model="recognizer-test", precision="fp16")
    assert backend.name in DEFAULT_ORDER
    assert ("recognizer-test", backend.name, backend.precision) in info.model_info()
    out = backend.run({backend.input_names[0]: np.zeros((2, 3, 112, 112), np.float32)})
    assert out[0].shape == (2, 128)


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
    import faceedge.trt_engines.backends as backends
    from faceedge.edge.detect import YuNetDetector
    from faceedge.trt_engines.tensorrt_backend import default_profile

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
