from pathlib import Path

import pytest

from faceedge.edge.config import Config, load_config
from faceedge.edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_example_config_matches_schema_defaults():
    assert load_config(REPO / "config" / "faceedge.yaml") == Config()


def test_set_overrides_any_key_with_yaml_typing():
    config = load_config(None, ["detect.min_face=24", "publish.update_interval_s=2.5", "metrics.enabled=false"])
    assert config.detect.min_face == 24
    assert config.publish.update_interval_s == 2.5
    assert config.metrics.enabled is False


def test_decoder_threads_auto_shares_half_the_cores_among_streams():
    from faceedge.edge.source import decoder_thread_count

    assert load_config(None, ["source.decoder_threads=3"]).source.decoder_threads == 3
    assert [decoder_thread_count("auto", streams, cores=2) for streams in (1, 4)] == [1, 1]
    assert [decoder_thread_count("auto", streams, cores=16) for streams in (1, 2, 3, 16)] == [8, 4, 2, 1]
    assert decoder_thread_count(0, 4, cores=16) == 0  # FFmpeg picks
    assert decoder_thread_count(2, 4, cores=16) == 2


@pytest.mark.parametrize("override, named", [
    ("detect.min_fcae=24", "detect.min_fcae"),
    ("detect.min_face=big", "detect.min_face"),
    ("publish.jpeg_quality=500", "publish.jpeg_quality"),
    ("nonsense.key=1", "nonsense"),
    ("source.decoder_threads=-1", "source.decoder_threads"),
    ("source.decoder_threads=fast", "source.decoder_threads"),
    ("inference.backend=openvino", "inference.backend"),
    ("inference.order=[tensorrt, openvino]", "inference.order.1"),
    ("inference.threads=-1", "inference.threads"),
])
def test_bad_keys_and_values_are_refused_naming_the_key(override, named):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert named in str(error.value)
    assert error.value.exit_code == 2


def test_bad_url_scheme_and_stream_id_are_refused():
    with pytest.raises(ConfigError, match=r"streams\.0\.url.*gopher"):
        load_config(None, [], {"streams": [{"id": "a", "url": "gopher://x/y"}]})
    with pytest.raises(ConfigError, match=r"streams\.0\.id"):
        load_config(None, [], {"streams": [{"id": "bad id!", "url": "rtsp://x/y"}]})


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detect: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_backend_names_order_and_keys_come_from_the_backend_plugins():
    from faceedge.trt_engines.backends import default_order, settings_models

    inference = load_config(None, ["inference.backend=onnxruntime-cpu", "inference.engine_cache=/tmp/e"]).inference
    assert inference.backend == "onnxruntime-cpu" and inference.engine_cache == "/tmp/e"
    assert tuple(inference.order) == default_order()
    plugin_keys = {key for model in settings_models() for key in model.model_fields}
    assert plugin_keys == {"threads", "engine_cache", "opencv_threads"} and plugin_keys <= set(type(inference).model_fields)
    with pytest.raises(ConfigError, match="known: auto, tensorrt, onnxruntime-cuda, torch-cuda, onnxruntime-cpu, opencv-cpu"):
        load_config(None, ["inference.backend=openvino"])
    with pytest.raises(ConfigError, match=r"inference\.order_by_model\.recognizer\.0.*unknown inference backend 'openvino'"):
        load_config(None, ["inference.order_by_model={recognizer: [openvino]}"])
    with pytest.raises(ConfigError, match=r"inference\.order_by_model\.recogniser"):
        load_config(None, ["inference.order_by_model={recogniser: [opencv-cpu]}"])
