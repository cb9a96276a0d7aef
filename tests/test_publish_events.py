"""Which messages a real pipeline sends per track: early publish on and off, on the street clip.

Every sent message is also written to the face spool, which stores the exact multipart parts
(decoded and checked on the way in), so the tests read what a subscriber would have received.
The lifecycle's part, frame by frame and without threads, is tested on synthetic faces first.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import jsonschema
import pytest

from faceedge.edge.metrics import Metrics
from faceedge.edge.pipeline import Pipeline
from faceedge.edge.wire import load_schema
from faceedge.edge.spool import read_spool
from test_pipeline_stages import RecordingObserver, Stage, face_at, file_config, run_with_timeout


def live_track(stage: Stage, scores: list[float]) -> list[tuple]:
    """One face moving right with these scores, then gone until its track ends: (event, frame, score) sent."""
    for index, score in enumerate(scores):
        stage.frame(index, [face_at(100 + 2 * index, 100, score, index)])
    for index in range(len(scores), len(scores) + 6):
        stage.frame(index, [])
    return [(m.meta["event"], m.meta["frame_index"], m.meta["score"]) for m in stage.sent]


def test_early_publish_waits_for_the_track_to_be_confirmed_and_sends_each_face_once():
    # The tracker confirms a track on its third sighting (track.initialization_delay 2): 0.6 comes too soon.
    overrides = ("publish.early_score=0.5", "publish.early_update_margin=0.1")
    assert live_track(Stage(*overrides), [0.3, 0.6, 0.65, 0.8, 0.7]) == [("early", 2, 0.65), ("update", 3, 0.8)]
    # A best that gained less than the margin on the last face sent still goes out when the track ends.
    assert live_track(Stage(*overrides), [0.3, 0.6, 0.65, 0.7]) == [("early", 2, 0.65), ("best", 3, 0.7)]
    assert live_track(Stage(), [0.3, 0.6, 0.65, 0.7]) == [("best", 3, 0.7)]  # off by default


def test_early_within_bounds_the_wait_for_a_tracks_first_face_below_early_score():
    # Frames 40 ms apart; the track is confirmed at frame 2 (80 ms); at frame 3, 0.1 s after its first sighting,
    # its best so far (frame 1) goes out.
    overrides = ("publish.early_score=0.9", "publish.early_within_s=0.1")
    assert live_track(Stage(*overrides), [0.3, 0.6, 0.5, 0.55, 0.7]) == [("early", 1, 0.6), ("update", 4, 0.7)]
    # Without the bound, nothing reaches early_score: the first face goes out at the end, as `best`.
    assert live_track(Stage("publish.early_score=0.9"), [0.3, 0.6, 0.5, 0.55, 0.7]) == [("best", 4, 0.7)]


pytestmark = pytest.mark.slow  # the pipeline end to end on the street clip


def run_clip(tmp_path, *overrides):
    metrics, observer = Metrics(), RecordingObserver()
    config = file_config("publish.spool.enabled=true", f"publish.spool.dir={tmp_path / 'spool'}", *overrides)
    assert run_with_timeout(Pipeline(config, metrics=metrics, observer=observer)) == {"status": 0}
    messages = [meta for meta, _ in read_spool(tmp_path / "spool")]
    # Faces offered to each published track over its life, counted from its first sighting.
    offers_per_key = Counter(key for _, key, _, _, _ in observer.offers)
    track_ids = {key: track_id for _, key, track_id, _, _ in observer.offers if track_id is not None}
    offers_per_track = {track_id: offers_per_key[key] for key, track_id in track_ids.items()}
    return messages, metrics, offers_per_track


def by_track(messages):
    tracks = defaultdict(list)
    for meta in messages:
        tracks[meta["track_id"]].append(meta)
    return tracks


def test_early_publish_sends_a_face_while_the_track_is_live_and_a_bounded_few_after(tmp_path):
    early_score, margin = 0.5, 0.1
    messages, metrics, offers = run_clip(tmp_path, f"publish.early_score={early_score}",
                                         f"publish.early_update_margin={margin}")
    schema = load_schema()
    for meta in messages:
        jsonschema.validate(meta, schema)
        assert meta["quality"]["score"] == round(100 * meta["score"])
    early = [meta for meta in messages if meta["event"] == "early"]
    assert early, "no track was published early"
    assert metrics.value("faceedge_faces_published_total", stream="clip", event="early") == len(early)
    for meta in early:
        assert meta["score"] >= early_score
        # Sent while the track was still being offered faces, not at its end.
        assert meta["frames_seen"] < offers[meta["track_id"]]
    bound = 1 + math.floor((1 - early_score) / margin) + 1
    for track_id, sent in by_track(messages).items():
        assert len(sent) <= bound, (track_id, [m["event"] for m in sent])
        assert len({m["frame_index"] for m in sent}) == len(sent), "a face was sent twice"
        events = [m["event"] for m in sent]
        if events[-1] == "best":
            assert sent[-1]["frames_seen"] == offers[track_id]
        if "early" in events:
            assert events[0] == "early" and events.count("early") == 1
            scores = [m["score"] for m in sent if m["event"] == "update"]
            last = sent[0]["score"]
            for score in scores:
                assert score >= last + margin - 1e-6
                last = score


def test_early_publish_is_off_by_default_one_best_per_track(tmp_path):
    messages, metrics, _ = run_clip(tmp_path)
    assert {meta["event"] for meta in messages} == {"best"}
    tracks = by_track(messages)
    assert all(len(sent) == 1 for sent in tracks.values())
    assert len(tracks) == metrics.value("faceedge_tracks_ended_total", stream="clip") >= 3


def test_early_publish_below_min_score_waits_for_min_score(tmp_path):
    min_score = 0.6
    messages, metrics, _ = run_clip(tmp_path, "publish.early_score=0.05", f"select.min_score={min_score}")
    assert any(meta["event"] == "early" for meta in messages)
    assert all(meta["score"] >= min_score for meta in messages)
    assert metrics.value("faceedge_tracks_below_min_score_total", stream="clip") >= 1
