"""TensorRT and torch-CUDA backends: run where their libraries and a GPU exist, skipped elsewhere
with the reason (shown by `pytest -rs`, which the project's pytest options turn on)."""

import numpy as np
import pytest

from faceedge.trt_engines.backends import describe_backends
from faceedge.trt_engines.base import BackendUnavailable
from faceedge.trt_engines.models import model_path
from faceedge.trt_engines.plugins.onnxruntime_session import OnnxRuntimeBackend

STATUS = {name: (ok, detail) for name, ok, detail in describe_backends()}


def needs(backend):
    ok, detail = STATUS[backend]
    return pytest.mark.skipif(not ok, reason=f"{backend} unavailable here: {detail}")


@needs("tensorrt")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_matches_onnxruntime_and_is_cached(tmp_path, precision):
    from faceedge.trt_engines.plugins.tensorrt import TensorRTBackend

    path = model_path("recognizer")
    x = np.random.default_rng(0).random((4, 3, 112, 112), dtype=np.float32) * 255
    want = OnnxRuntimeBackend(path).run({"data": x})[0]
    backend = TensorRTBackend.from_onnx(path, precision=precision, max_batch=8, cache_dir=tmp_path)
    got = backend.run({"data": x})[0]
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.99
    engines = list(tmp_path.glob("*.engine"))
    assert len(engines) == 1
    mtime = engines[0].stat().st_mtime_ns
    TensorRTBackend.from_onnx(path, precision=precision, max_batch=8, cache_dir=tmp_path)
    assert engines[0].stat().st_mtime_ns == mtime  # reused, not rebuilt
    TensorRTBackend.from_onnx(path, precision=precision, max_batch=4, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.engine"))) == 2  # new profile, new engine


@needs("torch-cuda")
def test_torch_backend_runs_a_module_in_fp16():
    import torch

    from faceedge.trt_engines.plugins.torch_cuda import TorchBackend

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x = np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)
    want = module(torch.from_numpy(x)).detach().numpy()
    got = TorchBackend.open(module, model_path("recognizer"), precision="fp16").run({"input": x})[0]
    np.testing.assert_allclose(got, want, atol=2e-2)


def test_torch_backend_without_module_or_cuda_is_passed_over(tmp_path):
    from faceedge.trt_engines.plugins.torch_cuda import TorchBackend

    with pytest.raises(BackendUnavailable):
        TorchBackend.open(None, tmp_path / "model.onnx")
