from dataclasses import replace
from pathlib import Path

import pytest

from faceedge.trt_engines.engine_cache import batch_profile, engine_path, make_key

PROFILE = batch_profile("input", (3, 112, 112), 32, 8)
BASE = dict(onnx_sha256="a" * 64, gpu_name="Orin", compute_capability="8.7", trt_version="10.3.0",
            precision="fp16", profile=PROFILE)


def test_same_inputs_give_the_same_engine_path(tmp_path):
    assert engine_path(tmp_path, "m", make_key(**BASE)) == engine_path(tmp_path, "m", make_key(**dict(BASE)))


@pytest.mark.parametrize("field, value", [
    ("onnx_sha256", "b" * 64), ("gpu_name", "NVIDIA H100"), ("compute_capability", "9.0"),
    ("trt_version", "10.4.0"), ("precision", "int8"), ("profile", batch_profile("input", (3, 112, 112), 16, 8)),
    ("profile", batch_profile("input", (3, 128, 128), 32, 8)), ("profile", batch_profile("input", (3, 112, 112), 32, 4)),
])
def test_each_field_changes_the_key(field, value):
    assert make_key(**{**BASE, field: value}).digest() != make_key(**BASE).digest()


def test_profile_order_and_whitespace_do_not_change_the_key():
    two = {**batch_profile("a", (3, 8, 8), 4), **batch_profile("b", (10,), 4)}
    swapped = {"b": two["b"], "a": two["a"]}
    assert make_key(**{**BASE, "profile": two}) == make_key(**{**BASE, "profile": swapped})
    assert make_key(**{**BASE, "gpu_name": "Orin "}) == make_key(**BASE)


def test_bad_profiles_and_precisions_are_refused():
    with pytest.raises(ValueError):
        make_key(**{**BASE, "profile": {"x": ((4, 3), (2, 3), (8, 3))}})
    with pytest.raises(ValueError):
        make_key(**{**BASE, "precision": "int4"})


def test_dynamic_spatial_profile_keeps_min_opt_max():
    profile = batch_profile("input", (3, 384, 640), 8, 4, (3, 32, 32), (3, 640, 640))
    assert profile["input"] == ((1, 3, 32, 32), (4, 3, 384, 640), (8, 3, 640, 640))
    key = make_key(**{**BASE, "profile": profile})
    assert Path(key.filename("yunet")).suffix == ".engine" and "fp16" in key.filename("yunet")
    assert replace(key, precision="int8").digest() != key.digest()


@pytest.mark.parametrize("options, cache_dir", [({}, None), ({"engine_cache": "/srv/engines", "threads": 3},
                                                              Path("/srv/engines"))])
def test_the_tensorrt_plugin_builds_from_the_calibrated_onnx_into_the_configured_cache(tmp_path, monkeypatch,
                                                                                       options, cache_dir):
    from faceedge.trt_engines.backends import registered
    from faceedge.trt_engines.base import BackendRequest
    from faceedge.trt_engines.plugins import tensorrt

    built = {}
    monkeypatch.setattr(tensorrt.TensorRTBackend, "from_onnx", classmethod(lambda cls, path, **kw: built.update(kw, path=path)))
    (tmp_path / "m.int8.onnx").write_bytes(b"")
    request = BackendRequest(tmp_path / "m.onnx", "int8", max_batch=4, profile=PROFILE, options=options)
    registered()["tensorrt"].open(request, "int8")
    assert built == {"path": tmp_path / "m.int8.onnx", "precision": "int8", "max_batch": 4, "profile": PROFILE,
                     "cache_dir": cache_dir}
