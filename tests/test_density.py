"""Detection every interval+1-th frame, load-adaptive intervals, and the density bench."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import av

from prometheus_client.parser import text_string_to_metric_families

from conftest import VIDEO, wait_for
from faceedge.edge.cadence import DetectCadence
from faceedge.edge.cli import main
from faceedge.edge.config import load_config
from faceedge.edge.metrics import Metrics
from faceedge.edge.pipeline import Pipeline, make_detector


def clip_frames() -> int:
    with av.open(str(VIDEO)) as container:
        return sum(1 for _ in container.decode(video=0))


def run_file(*overrides: str, observer=None) -> Metrics:
    config = load_config(None, ["publish.bind=tcp://127.0.0.1:0", "metrics.enabled=false", "detect.input_size=320",
                                *overrides], {"streams": [{"id": "clip", "url": str(VIDEO)}]})
    metrics = Metrics()
    assert Pipeline(config, metrics=metrics, observer=observer).run() == 0
    return metrics


class TrackFrames:
    """Frame indices offered to each confirmed track."""

    def __init__(self):
        self.frames: dict[int, list[int]] = {}

    def offered(self, stream, track_key, track_id, candidate, score):
        if track_id is not None:
            self.frames.setdefault(track_id, []).append(candidate.frame_index)


def test_interval_2_detects_every_third_frame_and_tracks_carry_over_the_skipped_ones():
    frames = clip_frames()
    every, third = TrackFrames(), TrackFrames()
    run_file(observer=every)
    metrics = run_file("detect.interval=2", observer=third)
    detected = metrics.value("faceedge_frames_processed_total", stream="clip")
    assert detected == len(range(0, frames, 3))
    assert metrics.value("faceedge_frames_skipped_total", stream="clip") == frames - detected
    assert metrics.value("faceedge_frames_decoded_total", stream="clip") == frames
    assert {index % 3 for indices in third.frames.values() for index in indices} == {0}
    # Continuous: one track follows a face over most of the clip across the skipped frames, and
    # skipping splits no track (no more tracks than detecting every frame).
    longest = max(third.frames.values(), key=len)
    assert len(longest) >= 0.6 * detected and longest[-1] - longest[0] >= 0.6 * frames
    assert 1 <= len(third.frames) <= len(every.frames)


def test_a_wide_interval_skips_non_reference_frames_in_the_decoder_and_still_counts_every_frame():
    frames = clip_frames()  # the clip alternates reference and non-reference frames
    offers = TrackFrames()
    metrics = run_file("detect.interval=3", "source.skip_nonref_from=3", observer=offers)
    decoded = metrics.value("faceedge_frames_decoded_total", stream="clip")
    detected = metrics.value("faceedge_frames_processed_total", stream="clip")
    assert decoded <= 0.6 * frames  # about half decoded
    assert detected == len(range(0, frames, 4))
    assert metrics.value("faceedge_frames_skipped_total", stream="clip") == frames - detected
    assert {index % 4 for indices in offers.frames.values() for index in indices} == {0}  # indices stay in frames
    assert offers.frames
    plain = run_file("detect.interval=3", "source.skip_nonref_from=null")
    assert plain.value("faceedge_frames_decoded_total", stream="clip") == frames


def test_cadence_widens_on_a_full_buffer_then_narrows_when_it_drains():
    now = [0.0]
    changes = []
    cadence = DetectCadence(1, max_interval=3, narrow_after_s=2.0, on_change=lambda n, d: changes.append((n, d)),
                            clock=lambda: now[0])
    assert [cadence.admit(False) for _ in range(4)] == [True, False, True, False]
    assert cadence.admit(True) is False and cadence.interval == 2  # due, but the buffer is full: skipped
    assert cadence.admit(True) is False and cadence.interval == 3
    assert cadence.admit(True) is True  # at max_interval the frame goes on (the buffer drops its oldest)
    now[0] = 10.0
    cadence.admit(False)
    assert cadence.interval == 2 and changes[-1] == (2, "narrowed")
    now[0] = 20.0
    cadence.admit(False)
    now[0] = 30.0
    cadence.admit(False)
    assert cadence.interval == 1  # never below the configured interval
    assert changes == [(2, "widened"), (3, "widened"), (2, "narrowed"), (1, "narrowed")]


class SlowDetector:
    """The real detector, `delay` seconds slower per call while set (an overloaded box)."""

    def __init__(self, config, delay: float):
        self.inner, self.delay = make_detector(config), delay

    def detect_batch(self, images):
        time.sleep(self.delay)
        return self.inner.detect_batch(images)


def http_get(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:  # /healthz answers 503 while a stream is unhealthy
        return error.read().decode()


def scrape(port: int, name: str, **labels) -> float:
    for family in text_string_to_metric_families(http_get(port, "/metrics")):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_an_overloaded_camera_widens_its_interval_before_dropping_and_narrows_when_load_falls():
    config = load_config(None, ["publish.bind=tcp://127.0.0.1:0", "metrics.host=127.0.0.1", "metrics.port=0",
                                "detect.input_size=320", "source.drop_policy=drop_oldest", "source.queue_size=2",
                                "detect.interval=0", "detect.max_interval=6", "detect.narrow_after_s=0.5"],
                         {"streams": [{"id": "cam", "url": str(VIDEO), "realtime": True, "loop": True}]})
    detector = SlowDetector(config, delay=0.25)  # 4 detections/s against 25 frames/s
    pipeline = Pipeline(config, detector=detector)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: pipeline.metrics_server is not None, 60)
        port = pipeline.metrics_server.port
        changes = "faceedge_detect_interval_changes_total"
        interval = lambda: json.loads(http_get(port, "/healthz"))["streams"]["cam"]["detect_interval"]  # noqa: E731
        assert wait_for(lambda: scrape(port, changes, stream="cam", direction="widened") >= 2, 30), "never widened"
        assert wait_for(lambda: interval() >= 2, 10)
        assert scrape(port, "faceedge_detect_interval", stream="cam") >= 2
        detector.delay = 0.0  # load falls
        assert wait_for(lambda: scrape(port, changes, stream="cam", direction="narrowed") >= 1, 30), "never narrowed"
        assert wait_for(lambda: interval() == 0, 30)
    finally:
        pipeline.stop()
        runner.join(60)
    assert not runner.is_alive()


def test_density_bench_runs_two_realtime_streams_and_writes_its_json(tmp_path):
    out = tmp_path / "density.json"
    assert main(["bench", "density", "--input", str(VIDEO), "--streams", "2", "--seconds", "3", "--warmup", "1",
                 "--decode-seconds", "1", "--json", str(out), "--set", "detect.input_size=320",
                 "--set", "publish.early_score=0.3"]) == 0
    result = json.loads(out.read_text())
    assert {"max_realtime_streams", "decode_only_max_streams", "per_stream"} <= set(result)
    assert [row["stream"] for row in result["per_stream"]] == ["cam0", "cam1"]
    for row in result["per_stream"]:
        assert row["decoded"] > 0 and row["detected"] > 0
        assert row["skipped"] > 0  # a camera-like stream detects every live_interval+1-th frame
        assert {"p50_ms", "p95_ms"} <= set(row["frame_latency"])
    assert result["decode_only_fps"] > 0
    total = result["total"]
    # Early publish on: tracks' first messages are `early` ones, and each track counts once among the first.
    assert total["publish_latency_by_event"]["early"]["count"] > 0
    assert 0 < total["first_publish_latency"]["count"] <= total["publish_latency"]["count"]
