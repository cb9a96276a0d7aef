from faceedge.edge.doctor import main
from faceedge.trt_engines.backends import describe_backends, registered


def test_doctor_reports_every_backend_plugin_in_order_then_the_engine_cache(tmp_path, capsys):
    assert main(["--engine-cache", str(tmp_path)]) in (0, 1)  # 1 only for an install problem, on stderr
    lines = capsys.readouterr().out.splitlines()
    rows = describe_backends()
    assert [name for name, _, _ in rows] == list(registered())
    assert lines[:len(rows)] == [f"backend {name}: {'available' if ok else 'unavailable'} - {detail}"
                                 for name, ok, detail in rows]
    assert lines[len(rows)].startswith(f"engine cache {tmp_path}: ")
    assert dict((name, ok) for name, ok, _ in rows)["onnxruntime-cpu"] is True


def test_doctor_lists_calibrated_int8_models_and_the_copies_made_from_ranges(tmp_path, monkeypatch):
    from faceedge.edge.doctor import engine_cache_report

    monkeypatch.setenv("FACEEDGE_CACHE", str(tmp_path))
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    for name in ("sface-dynbatch1.onnx", "sface-dynbatch1.int8-qoperator-0123456789abcdef.onnx",
                 "quality-dynbatch1.int8.onnx"):
        (onnx / name).write_bytes(b"")
    assert engine_cache_report(tmp_path / "engines") == [
        "int8 quality-dynbatch1.int8.onnx: calibrated with ?",
        "int8 sface-dynbatch1.int8-qoperator-0123456789abcdef.onnx: qoperator form made from ranges"]
