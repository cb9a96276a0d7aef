"""The two processing stages (detector thread, worker): nothing lost between them, failures not swallowed;
and the worker's stage on its own, without threads: each stream's tracks from first sighting to published face."""

from __future__ import annotations

import threading

import av
import jsonschema
import numpy as np
import pytest

from conftest import VIDEO
from faceedge.edge.align import ARCFACE_TEMPLATE
from faceedge.edge.config import load_config
from faceedge.edge.detect import Detection
from faceedge.edge.detect_align import DetectedFrame, DetectedRound
from faceedge.edge.metrics import Metrics
from faceedge.edge.pipeline import Pipeline, make_detector
from faceedge.edge.wire import load_schema
from faceedge.edge.select import Candidate, DetectorScorer
from faceedge.edge.source import FramePacket, StreamEvent
from faceedge.edge.track import FaceTracker
from faceedge.edge.track_select import TrackSelect


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


# -- the worker's stage without threads: synthetic faces, the detector's score as the face's score ---------

T0 = 1.7e9  # wall time of frame 0
FPS = 25


def face_at(x: float, y: float, score: float, index: int, size: float = 80.0, shade: int = 128) -> Candidate:
    """A frontal face (the ArcFace template) `size` px wide at (x, y) in frame `index`, aligned as a flat `shade`."""
    landmarks = (ARCFACE_TEMPLATE / 112.0 * size + np.array([x, y])).astype(np.float32)
    det = Detection(np.array([x, y, x + size, y + 1.2 * size], np.float32), landmarks, score)
    return Candidate(np.full((112, 112, 3), shade, np.uint8), det, (720, 1280), index, index / FPS, None,
                     T0 + index / FPS)


def packet(index: int, stream: str = "cam", image: np.ndarray | None = None) -> FramePacket:
    image = np.zeros((36, 64, 3), np.uint8) if image is None else image
    return FramePacket(stream, index, index / FPS, T0 + index / FPS, image, None)


class CountingScorer(DetectorScorer):
    def __init__(self):
        self.calls = 0

    def score(self, candidates):
        self.calls += 1
        return super().score(candidates)


class Stage:
    """A `TrackSelect` fed by hand, its messages and offers recorded."""

    def __init__(self, *overrides: str, streams=("cam",), identity=None):
        config = load_config(None, ["track.hit_counter_max=3", *overrides],
                             {"streams": [{"id": s, "url": f"{s}.mp4"} for s in streams]})
        self.metrics, self.observer, self.scorer, self.sent = Metrics(), RecordingObserver(), CountingScorer(), []
        self.stage = TrackSelect(config, self.metrics, self.scorer, "box1", self.sent.append, identity, self.observer)

    def frame(self, index: int, faces: list[Candidate], stream: str = "cam", image=None) -> None:
        self.stage.process(DetectedRound([], [DetectedFrame(packet(index, stream, image), faces, 0.0)], 0.0))

    def event(self, kind: str, stream: str = "cam", detail: str = "") -> None:
        self.stage.process(DetectedRound([StreamEvent(stream, kind, detail)], [], 0.0))

    def events(self) -> list[tuple]:
        return [(m.meta["event"], m.meta["track_id"], m.meta["frame_index"]) for m in self.sent]

    def metric(self, name: str, stream: str = "cam") -> float:
        return self.metrics.value(name, stream=stream)


def test_the_tracker_hands_back_the_candidates_it_was_given():
    tracker = FaceTracker()
    for index in range(3):
        faces = [face_at(100 + index, 100, 0.9, index), face_at(600, 300 + index, 0.8, index)]
        update = tracker.update(faces)
        assert sorted(map(id, (cand for _, cand in update.matched))) == sorted(map(id, faces))
        assert len({key for key, _ in update.matched}) == 2
    assert len(update.confirmed) == 2


def test_a_fast_face_detected_every_third_frame_stays_one_track_and_a_neighbour_keeps_its_own():
    # 1.2 face sizes between detections, farther than the gate (0.7) from where an initializing track was
    # last seen; extrapolating its sightings follows it. A still face beside its path keeps its own track.
    tracker = FaceTracker()
    keys, still_keys = set(), set()
    for step, index in enumerate(range(0, 30, 3)):
        walker, still = face_at(100 + 96 * step, 300, 0.9, index), face_at(400, 120, 0.9, index)
        update = tracker.update([walker, still], period=2)
        by_face = {id(candidate): key for key, candidate in update.matched}
        keys.add(by_face.get(id(walker)))
        still_keys.add(by_face.get(id(still)))
    assert len(keys) == 1 and None not in keys and keys <= update.confirmed
    assert len(still_keys) == 1 and keys.isdisjoint(still_keys)


def test_an_ended_track_publishes_its_best_face_once_under_its_published_id():
    stage = Stage()
    scores = [0.4, 0.7, 0.9, 0.6, 0.5]
    for index, score in enumerate(scores):
        stage.frame(index, [face_at(100 + 2 * index, 100, score, index)])
    assert stage.sent == []  # live: nothing yet without early publish or updates
    stage.frame(5, [face_at(900, 500, 0.99, 5)])  # someone seen once: never confirmed, never published
    for index in range(6, 12):
        stage.frame(index, [])
    assert stage.events() == [("best", 1, scores.index(max(scores)))]
    meta = stage.sent[0].meta
    jsonschema.validate(meta, load_schema())
    assert (meta["stream"], meta["instance"], meta["score"]) == ("cam", "box1", max(scores))
    assert meta["scorer"] == {"name": "detector", "version": "1"}
    assert meta["frames_seen"] == len(scores)
    assert meta["track_duration_s"] == round((len(scores) - 1) / FPS, 3)
    # Offers before the tracker confirmed the track carry no id; each offer is one (track, frame).
    ids = [track_id for _, _, track_id, _, _ in stage.observer.offers]
    assert ids[:2] == [None, None] and ids[2:len(scores)] == [1] * (len(scores) - 2) and ids[-1] is None
    assert stage.metric("faceedge_tracks_ended_total") == 1
    assert stage.metric("faceedge_frames_processed_total") == 12


def striped(candidate: Candidate, phase: int) -> Candidate:
    columns = (np.sin((np.arange(112) + phase) * 2 * np.pi / 56) * 100 + 128).astype(np.uint8)
    candidate.aligned = np.repeat(np.tile(columns, (112, 1))[:, :, None], 3, axis=2)
    return candidate


def test_with_typical_of_an_ended_track_publishes_its_most_typical_leading_face():
    phases = [52, 28, 0, 4, 6]  # the second face, scored highest, looks unlike the rest; the third is central
    scores = [0.5, 0.99, 0.9, 0.8, 0.3]
    for overrides, chosen in [((), 1), (("select.typical_of=4",), 2)]:
        stage = Stage(*overrides)
        for index, (phase, score) in enumerate(zip(phases, scores)):
            stage.frame(index, [striped(face_at(100 + 2 * index, 100, score, index), phase)])
        for index in range(5, 10):
            stage.frame(index, [])
        assert stage.events() == [("best", 1, chosen)]
        assert stage.sent[0].meta["score"] == scores[chosen]


def test_a_best_below_min_score_is_counted_and_not_published():
    stage = Stage("select.min_score=0.5")
    for index in range(4):
        stage.frame(index, [face_at(100, 100, 0.3, index), face_at(700, 300, 0.8, index)])
    for index in range(4, 10):
        stage.frame(index, [])
    assert [m.meta["score"] for m in stage.sent] == [0.8]
    assert stage.metric("faceedge_tracks_ended_total") == 2
    assert stage.metric("faceedge_tracks_below_min_score_total") == 1


def test_a_gap_ends_every_track_a_finished_stream_too_and_ids_go_on():
    stage = Stage("track.hit_counter_max=30")
    for index in range(4):
        stage.frame(index, [face_at(100, 100, 0.8, index)])
    stage.event("disconnected")
    assert stage.events() == [("best", 1, 0)]
    for index in range(4, 8):  # the same face after the gap: a new track
        stage.frame(index, [face_at(100, 100, 0.8, index)])
    stage.event("finished", detail="end of file")
    assert stage.events() == [("best", 1, 0), ("best", 2, 4)]
    for index in range(8, 12):
        stage.frame(index, [face_at(100, 100, 0.8, index)])
    stage.stage.end_all()  # the pipeline stops
    assert stage.events()[2:] == [("best", 3, 8)]


def test_one_scorer_call_per_round_and_track_ids_per_stream():
    stage = Stage(streams=("door", "hall"))
    for index in range(4):
        frames = [DetectedFrame(packet(index, stream), [face_at(100 + i, 100, 0.8, index)], 0.0)
                  for i, stream in enumerate(("door", "hall"))]
        stage.stage.process(DetectedRound([], frames, 0.0))
    assert stage.scorer.calls == 4
    stage.stage.end_all()
    assert sorted((m.meta["stream"], m.meta["track_id"]) for m in stage.sent) == [("door", 1), ("hall", 1)]
