"""The two processing stages (detector thread, worker): nothing lost between them, failures not swallowed."""

from __future__ import annotations

import threading

import av
import pytest

from conftest import VIDEO
from faceedge.edge.config import load_config
from faceedge.edge.metrics import Metrics
from faceedge.edge.pipeline import Pipeline, make_detector


def file_config(*overrides: str):
    return load_config(None, ["publish.bind=tcp://127.0.0.1:0", "metrics.enabled=false", "detect.input_size=320",
                              *overrides], {"streams": [{"id": "clip", "url": str(VIDEO)}]})


def run_with_timeout(pipeline: Pipeline, timeout: float = 120.0):
    outcome = {}

    def target():
        try:
            outcome["status"] = pipeline.run()
        except BaseException as exc:  # the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "pipeline did not return"
    return outcome


@pytest.mark.slow
def test_every_decoded_frame_is_detected_tracked_and_counted():
    with av.open(str(VIDEO)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    metrics = Metrics()
    outcome = run_with_timeout(Pipeline(file_config(), metrics=metrics))
    assert outcome == {"status": 0}
    assert metrics.value("faceedge_frames_decoded_total", stream="clip") == frames
    assert metrics.value("faceedge_frames_processed_total", stream="clip") == frames
    assert metrics.value("faceedge_faces_detected_total", stream="clip") > frames  # a street of faces
    assert metrics.published("clip") >= 3


class FailingDetector:
    """The real detector, failing on its 30th call (a broken engine, a driver error)."""

    def __init__(self, config):
        self.inner, self.calls = make_detector(config), 0

    def detect_batch(self, images):
        self.calls += 1
        if self.calls == 30:
            raise RuntimeError("detector engine lost")
        return self.inner.detect_batch(images)


def test_a_detector_failure_fails_the_run_with_its_error_and_keeps_the_faces_seen():
    config = file_config("detect.input_size=640")
    metrics = Metrics()
    outcome = run_with_timeout(Pipeline(config, detector=FailingDetector(config), metrics=metrics))
    error = outcome.get("error")
    assert isinstance(error, RuntimeError) and "detector engine lost" in str(error)
    assert metrics.value("faceedge_frames_processed_total", stream="clip") == 29
    assert metrics.published("clip") >= 1  # the live tracks' best faces still went out


@pytest.mark.slow
def test_tracks_below_min_score_are_counted_not_published():
    # The street video has confirmed tracks of heads seen from behind (selection score near 0) and of clear faces.
    metrics = Metrics()
    outcome = run_with_timeout(Pipeline(file_config("detect.input_size=640", "select.min_score=0.5"), metrics=metrics))
    assert outcome == {"status": 0}
    ended = metrics.value("faceedge_tracks_ended_total", stream="clip")
    held_back = metrics.value("faceedge_tracks_below_min_score_total", stream="clip")
    published = metrics.value("faceedge_faces_published_total", stream="clip", event="best")
    assert held_back >= 1 and published >= 1
    assert published + held_back == ended


class RecordingObserver:
    def __init__(self):
        self.offers = []

    def offered(self, stream, track_key, track_id, candidate, score):
        self.offers.append((stream, track_key, track_id, candidate.frame_index, score))


@pytest.mark.slow
def test_the_observer_sees_every_offer_and_each_confirmed_track_by_its_published_id():
    metrics, observer = Metrics(), RecordingObserver()
    outcome = run_with_timeout(Pipeline(file_config(), metrics=metrics, observer=observer))
    assert outcome == {"status": 0}
    # Every face the tracker matched was offered once: one offer per (track, frame).
    assert len({(key, frame) for _, key, _, frame, _ in observer.offers}) == len(observer.offers)
    confirmed_ids = {track_id for _, _, track_id, _, _ in observer.offers if track_id is not None}
    assert len(confirmed_ids) == metrics.value("faceedge_tracks_ended_total", stream="clip") >= 3
    keys_per_id = {}
    for _, key, track_id, _, _ in observer.offers:
        if track_id is not None:
            keys_per_id.setdefault(track_id, set()).add(key)
    assert all(len(keys) == 1 for keys in keys_per_id.values())  # a published id is one tracker key
