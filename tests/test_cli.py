"""The command line: the demo end to end, and one clear error with the right exit code for bad input."""

import json
import subprocess
import sys

import cv2
import pytest

from conftest import REPO, faceedge_cmd

pytestmark = pytest.mark.slow  # each test runs the CLI in a subprocess


def run_cli(*args, timeout=120):
    return subprocess.run(faceedge_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if " ERROR " in line]


def test_runtime_commands_do_not_need_torch():
    # torch is the `train` extra: a runtime install (Jetson) must run without it.
    code = ("import sys; from faceedge.edge.cli import build_parser; build_parser(['run']).parse_args(['run']); "
            "import faceedge.edge.pipeline, faceedge.edge.demo, faceedge.edge.subscribe; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_unknown_config_key_exits_2_naming_it():
    result = run_cli("run", "--input", "x.mp4", "--set", "detect.min_fcae=3")
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and "detect.min_fcae" in error_lines(result)[0]
    assert "Traceback" not in result.stderr


def test_missing_model_file_is_named(tmp_path):
    result = run_cli("run", "--input", "x.mp4", "--set", f"detect.model={tmp_path}/nope.onnx")
    assert result.returncode == 3
    assert f"{tmp_path}/nope.onnx" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_model_file_is_named(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x00not a model")
    result = run_cli("run", "--input", "x.mp4", "--set", f"detect.model={bad}")
    assert result.returncode == 3 and "garbage.onnx" in result.stderr


def test_missing_input_file_fails_with_its_name(tmp_path):
    result = run_cli("run", "--input", str(tmp_path / "absent.mp4"), "--set", "metrics.enabled=false",
                     "--set", "publish.bind=tcp://127.0.0.1:0")
    assert result.returncode == 1
    assert "absent.mp4" in result.stderr and "Traceback" not in result.stderr


def summary(result):
    line = next(text for text in result.stderr.splitlines() if "frames processed" in text)
    words = line.split(": ", 2)[-1].split()
    return int(words[0]), int(words[3])


def test_truncated_file_publishes_the_faces_it_had(tmp_path, data_dir):
    whole = tmp_path / "whole.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(data_dir / "video" / "people_1080p.mp4"), "-c", "copy",
                    "-movflags", "+faststart", str(whole)], check=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    # One decoder thread: FFmpeg's frame threads swallow the cut-off packet's error instead of reporting it.
    result = run_cli("run", "--input", str(cut), "--set", "metrics.enabled=false",
                     "--set", "publish.bind=tcp://127.0.0.1:0", "--set", "source.decoder_threads=1")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "skipping packets the decoder rejects" in result.stderr  # the cut-off last packet
    processed, published = summary(result)
    assert 0 < processed < 105 and published > 0


def test_unreadable_file_is_one_error_naming_it(tmp_path, data_dir):
    # A plain MP4 cut in half loses its index (moov atom at the end): it cannot be opened.
    cut = tmp_path / "noindex.mp4"
    cut.write_bytes((data_dir / "video" / "people_1080p.mp4").read_bytes()[:1_000_000])
    result = run_cli("run", "--input", str(cut), "--set", "metrics.enabled=false",
                     "--set", "publish.bind=tcp://127.0.0.1:0")
    assert result.returncode == 1
    errors = error_lines(result)
    assert len(errors) == 1 and "noindex.mp4" in errors[0]


def test_demo_publishes_faces_and_writes_contact_sheet(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path), "--seconds", "3", timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["faces"] >= 4 and len(summary["tracks"]) >= 4
    records = [json.loads(line) for line in (tmp_path / "faces" / "faces.jsonl").read_text().splitlines()]
    assert len(records) == summary["faces"]
    assert all((tmp_path / "faces" / r["files"]["face"]).stat().st_size > 0 for r in records)
    assert (tmp_path / "contact_sheet.png").stat().st_size > 10_000
    # One row per track: its sampled candidates with scores, and the face it sent.
    rows = summary["rows"]
    assert [row["track_id"] for row in rows] == summary["tracks"]
    last_sent = {r["track_id"]: r for r in records}
    for row in rows:
        assert 4 <= len(row["candidates"]) <= 8
        frames = [frame for frame, _, _ in row["candidates"]]
        assert frames == sorted(frames) and row["chosen_frame"] not in frames
        chosen = last_sent[row["track_id"]]
        assert (row["chosen_frame"], row["chosen_score"]) == (chosen["frame_index"], chosen["score"])
        # The chosen face beats every sampled candidate that did not touch the frame border.
        assert all(score <= row["chosen_score"] for _, score, edge in row["candidates"] if not edge)
    sheet = cv2.imread(str(tmp_path / "contact_sheet.png"))
    assert sheet.shape[0] >= len(rows) * 112


def test_bench_reports_side_by_side_rounds_and_their_medians_and_what_a_change_costs(tmp_path, data_dir):
    out = tmp_path / "bench.json"
    result = run_cli("bench", "--input", str(data_dir / "video" / "people_1080p.mp4"), "--frames", "40",
                     "--repeats", "3", "--json", str(out), "--set", "detect.input_size=320",
                     "--against", "track.identity_check=true", timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    rounds = report["rounds"]
    assert len(rounds) == 3 and report["frames"] >= 3 * 40
    for row in rounds:
        assert row["decode_only_fps"] > 0 and row["pipeline_fps"] > 0
        assert abs(row["ratio"] - row["pipeline_fps"] / row["decode_only_fps"]) < 2e-3
        assert abs(row["against_ratio"] - row["against_fps"] / row["pipeline_fps"]) < 2e-3
    assert report["ratio"] == sorted(row["ratio"] for row in rounds)[1]
    assert report["against_ratio"] == sorted(row["against_ratio"] for row in rounds)[1]
    low, high = report["against_ratio_interval95"]
    assert min(r["against_ratio"] for r in rounds) <= low <= report["against_ratio"] <= high <= max(
        r["against_ratio"] for r in rounds)
    assert report["against"] == ["track.identity_check=true"]
    assert [row["against_first"] for row in rounds] == [False, True, False]  # neither side always runs second
    assert report["detector_input_size"] == 320
    assert {"decode", "detect", "align", "track", "select"} <= set(report["stages"])
    assert "ratio" in result.stdout and "round 3" in result.stdout
