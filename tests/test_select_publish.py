import json

import cv2
import jsonschema
import numpy as np
import pytest

from faceedge.edge.align import ARCFACE_TEMPLATE
from faceedge.edge.detect import Detection
from faceedge.edge.enhance import Enhanced, PassThrough
from faceedge.edge.face_message import face_message
from faceedge.edge.face_quality import face_quality
from faceedge.edge.wire import SCHEMA, MessageError, decode_message, encode_message, load_schema
from faceedge.edge.publish_policy import PublishPolicy
from faceedge.edge.select import BestFace, Candidate, DetectorScorer, HeuristicScorer
from faceedge.edge.typical import settle_on_typical


def candidate(image, bbox=(100, 100, 212, 212), score=0.9, shape=(720, 1280)):
    det = Detection(np.array(bbox, np.float32), np.zeros((5, 2), np.float32), score)
    return Candidate(image, det, shape)


def test_heuristic_prefers_sharp_big_confident_faces(data_dir):
    face = cv2.resize(cv2.imread(str(next((data_dir / "identities" / "obama").glob("*.jpg")))), (112, 112))
    scorer = HeuristicScorer()
    sharp, blurred = scorer.score([candidate(face), candidate(cv2.GaussianBlur(face, (9, 9), 3))])
    assert sharp > blurred
    big, small = scorer.score([candidate(face), candidate(face, bbox=(100, 100, 140, 140))])
    assert big > small
    confident, unsure = scorer.score([candidate(face), candidate(face, score=0.5)])
    assert confident > unsure


def test_best_face_rejects_edge_faces_unless_nothing_else_was_seen():
    face = np.zeros((112, 112, 3), np.uint8)
    best = BestFace()
    edge = candidate(face, bbox=(0, 10, 100, 110))
    assert edge.touches_edge(2)
    assert best.offer(edge, 0.9, True, 1.0)
    inner = candidate(face)
    assert best.offer(inner, 0.1, False, 2.0), "an unrejected face must replace a rejected one"
    assert not best.offer(edge, 0.99, True, 3.0)
    assert best.candidate is inner and best.frames_seen == 3


def test_best_face_keeps_its_leading_candidates_best_first_unrejected_before_rejected():
    face = np.zeros((112, 112, 3), np.uint8)
    best = BestFace(leading=3)
    offered = [(candidate(face), 0.5, False), (candidate(face, bbox=(0, 10, 100, 110)), 0.99, True),
               (candidate(face), 0.7, False), (candidate(face), 0.6, False), (candidate(face), 0.1, False)]
    for cand, score, rejected in offered:
        best.offer(cand, score, rejected, 0.0)
    assert [(fit, score) for fit, score, _ in best.leaders] == [(True, 0.7), (True, 0.6), (True, 0.5)]
    assert best.leaders[0][2] is best.candidate is offered[2][0]
    single = BestFace()
    single.offer(candidate(face), 0.5, False, 0.0)
    assert single.leaders == [], "with one leading face the best is all a track keeps"


def face_with_stripes(period: int, phase: int = 0) -> np.ndarray:
    columns = (np.sin((np.arange(112) + phase) * 2 * np.pi / period) * 100 + 128).astype(np.uint8)
    return cv2.cvtColor(np.tile(columns, (112, 1)), cv2.COLOR_GRAY2BGR)


def test_a_track_ends_with_the_most_typical_of_its_leading_faces_not_an_outlier_that_scored_highest():
    alike = [face_with_stripes(56, phase) for phase in (52, 0, 4)]  # the second is the central one
    outlier = face_with_stripes(56, 28)  # the same stripes, inverted: a face unlike the track's others
    best = BestFace(leading=8)
    for image, score in [(alike[0], 0.90), (outlier, 0.99), (alike[1], 0.95), (alike[2], 0.80)]:
        best.offer(candidate(image), score, False, 0.0)
    assert best.candidate.aligned is outlier
    settle_on_typical(best)
    assert best.candidate.aligned is alike[1] and best.score == 0.95 and not best.rejected


def test_the_best_scored_face_stands_without_enough_peers_of_its_kind():
    best = BestFace(leading=8)
    chosen = candidate(face_with_stripes(56, 28))
    best.offer(candidate(face_with_stripes(56)), 0.5, False, 0.0)
    best.offer(chosen, 0.9, False, 0.0)
    for phase in (0, 2, 4):  # alike, but on the frame edge: not peers of an unrejected best
        best.offer(candidate(face_with_stripes(56, phase), bbox=(0, 10, 100, 110)), 0.99, True, 0.0)
    settle_on_typical(best)
    assert best.candidate is chosen
    for phase in (0, 2):
        best.offer(candidate(face_with_stripes(56, phase)), 0.3, False, 0.0)
    settle_on_typical(best, min_score=0.4)  # peers below select.min_score are no candidates either
    assert best.candidate is chosen
    single = BestFace()  # typical_of 1 keeps no leaders: nothing changes
    single.offer(chosen, 0.9, False, 0.0)
    settle_on_typical(single)
    assert single.candidate is chosen


def meta(**changes):
    base = {"schema": "faceedge.face/2", "instance": "box1", "event": "best", "stream": "cam0", "track_id": 3,
            "frame_index": 10, "pts_s": 0.4, "wall_time": "2026-01-01T00:00:00+00:00", "bbox": [1, 2, 3, 4],
            "landmarks": [[1, 2]] * 5, "det_score": 0.9, "score": 0.5, "scorer": {"name": "h", "version": "1"},
            "sr_applied": False, "sr_model": None, "edge_rejected": False, "frames_seen": 4,
            "track_duration_s": 0.2,
            "quality": {"iod_px": 35.2, "box_px": 80.0, "box_width_px": 80.0, "box_height_px": 96.5, "yaw_deg": -4.1,
                        "pitch_deg": 2.0, "sharpness": 250.3, "brightness": 118.0, "score": 50}}
    base.update(changes)
    return base


def test_message_round_trip_validates_against_schema():
    face = np.full((112, 112, 3), 128, np.uint8)
    parts = encode_message(meta(), face, face, original=face)
    message = decode_message(parts)
    jsonschema.validate(message.meta, load_schema())
    assert message.topic == "face.cam0" and message.original_jpeg is not None
    assert cv2.imdecode(np.frombuffer(message.face_jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (112, 112, 3)


@pytest.mark.parametrize("mangle, problem", [
    (lambda p: p[:2], "parts"),
    (lambda p: [p[0], b"{not json", *p[2:]], "JSON"),
    (lambda p: [b"face.other", *p[1:]], "topic"),
    (lambda p: [p[0], json.dumps(dict(meta(), schema="x")).encode(), *p[2:]], "schema"),
    (lambda p: [*p[:2], b"GIF89a", p[3]], "JPEG"),
])
def test_malformed_messages_are_refused_with_the_reason(mangle, problem):
    face = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(MessageError, match=problem):
        decode_message(mangle(encode_message(meta(), face, face)))


def test_schema_rejects_missing_and_unknown_fields():
    schema = load_schema()
    broken = meta()
    del broken["track_id"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(meta(colour="red"), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(meta(quality=dict(meta()["quality"], colour="red")), schema)
    no_score = meta()
    del no_score["quality"]["score"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(no_score, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(meta(quality=dict(meta()["quality"], score=0.5)), schema)  # 0-100, an integer


def test_schema_version_is_one_string_everywhere():
    schema = load_schema()
    assert schema["title"] == SCHEMA and schema["properties"]["schema"]["const"] == SCHEMA
    assert schema["$id"].endswith(f"/face-{SCHEMA.rsplit('/', 1)[1]}.json")


def test_a_message_is_made_from_the_tracks_chosen_face_and_encoded_with_its_enhancement(data_dir):
    face = cv2.resize(cv2.imread(str(next((data_dir / "identities" / "obama").glob("*.jpg")))), (112, 112))
    landmarks = ARCFACE_TEMPLATE * 2 + 300
    best = BestFace()
    for index, score in enumerate([0.4, 0.8, 0.6]):
        det = Detection(np.array([320, 330, 520, 560], np.float32), landmarks + index, 0.9)
        best.offer(Candidate(face, det, (1080, 1920), 10 + index, 0.4 + index / 25, face, 1.7e9 + index / 25),
                   score, False, 1.7e9 + index / 25)
    message = face_message(best, "update", stream="door", track_id=7, instance="box1", scorer=DetectorScorer())
    assert message.candidate is best.candidate
    meta = message.meta
    jsonschema.validate(meta, load_schema())
    assert (meta["schema"], meta["event"], meta["stream"], meta["track_id"]) == (SCHEMA, "update", "door", 7)
    assert (meta["frame_index"], meta["score"], meta["frames_seen"]) == (11, 0.8, 3)
    assert meta["landmarks"][0] == [round(float(v), 1) for v in landmarks[0] + 1]
    assert meta["quality"] == face_quality(best.candidate, 0.8)
    plain = decode_message(message.encode(PassThrough().enhance(message.candidate), 90))
    assert plain.meta == meta and plain.original_jpeg is None and plain.topic == "face.door"
    restored = Enhanced(255 - face, face, sr_applied=True, model="sr@abc", original_face=face)
    sr = decode_message(message.encode(restored, 90))
    assert (sr.meta["sr_applied"], sr.meta["sr_model"]) == (True, "sr@abc") and sr.original_jpeg is not None
    assert dict(sr.meta, sr_applied=False, sr_model=None) == meta
    jsonschema.validate(sr.meta, load_schema())


def test_a_learned_scorer_names_the_recogniser_it_was_trained_for_in_every_message(data_dir):
    from faceedge.edge.config import load_config
    from faceedge.edge.select import make_scorer

    config = load_config(None, [])
    selection = make_scorer(config.select, config.inference)
    assert selection.trained_for == "sface"  # the shipped model's faceedge.recognizer metadata
    face = cv2.resize(cv2.imread(str(next((data_dir / "identities" / "obama").glob("*.jpg")))), (112, 112))
    best = BestFace()
    det = Detection(np.array([320, 330, 520, 560], np.float32), ARCFACE_TEMPLATE * 2 + 300, 0.9)
    best.offer(Candidate(face, det, (1080, 1920), 0, 0.0, face, 1.7e9), 0.7, False, 1.7e9)
    learned = face_message(best, "best", stream="door", track_id=1, instance="box1", scorer=selection).meta
    jsonschema.validate(learned, load_schema())
    assert learned["scorer"]["trained_for"] == "sface"
    plain = face_message(best, "best", stream="door", track_id=1, instance="box1", scorer=DetectorScorer()).meta
    assert "trained_for" not in plain["scorer"]


def test_quality_measures_the_face_in_source_pixels(data_dir):
    face = cv2.resize(cv2.imread(str(next((data_dir / "identities" / "obama").glob("*.jpg")))), (112, 112))
    # A frontal face (the ArcFace template) twice the aligned size, 300 px from the origin.
    landmarks = ARCFACE_TEMPLATE * 2 + 300
    det = Detection(np.array([320, 330, 520, 560], np.float32), landmarks, 0.9)
    quality = face_quality(Candidate(face, det, (1080, 1920)), 0.8349)
    jsonschema.validate(meta(quality=quality), load_schema())
    template_iod = float(np.linalg.norm(ARCFACE_TEMPLATE[1] - ARCFACE_TEMPLATE[0]))
    assert quality["iod_px"] == pytest.approx(2 * template_iod, abs=0.1)
    assert (quality["box_px"], quality["box_width_px"], quality["box_height_px"]) == (200.0, 200.0, 230.0)
    assert abs(quality["yaw_deg"]) < 1 and abs(quality["pitch_deg"]) < 1
    assert quality["score"] == 83
    turned = landmarks.copy()
    turned[2, 0] += 0.6 * 2 * template_iod  # nose as far sideways as it is deep
    assert face_quality(Candidate(face, Detection(det.bbox, turned, 0.9), (1080, 1920)), 0.5)["yaw_deg"] > 40
    blurred = face_quality(Candidate(cv2.GaussianBlur(face, (9, 9), 3), det, (1080, 1920)), 0.5)
    assert blurred["sharpness"] < quality["sharpness"] / 2
    dark = face_quality(Candidate(face // 2, det, (1080, 1920)), 0.5)
    assert dark["brightness"] == pytest.approx(quality["brightness"] / 2, abs=1.0)


def run_policy(policy, scores, rejected=()):
    """Events a live track gets frame by frame, then its end event."""
    best, face, events = BestFace(), np.zeros((112, 112, 3), np.uint8), []
    for i, score in enumerate(scores):
        best.offer(candidate(face), score, i in rejected, float(i))
        event = policy.live_event(best, float(i))
        if event is not None:
            best.published(float(i), event)
            events.append((event, round(best.score, 3)))
    if best.score >= policy.min_score and policy.end_event(best) is not None:
        events.append(("best", round(best.score, 3)))
    return events


def test_early_publish_sends_at_once_then_clearly_better_faces_then_only_a_new_best():
    policy = PublishPolicy(early_score=0.6, early_update_margin=0.1)
    assert run_policy(policy, [0.2, 0.5, 0.62, 0.65, 0.7, 0.75, 0.74]) == [("early", 0.62), ("update", 0.75)]
    # A best that improved on the last face sent, but by less than the margin, still goes out at the end.
    assert run_policy(policy, [0.62, 0.65]) == [("early", 0.62), ("best", 0.65)]
    assert run_policy(policy, [0.2, 0.3]) == [("best", 0.3)]  # never reached early_score
    # A face touching the frame border is not sent early; the first clean one is.
    assert run_policy(policy, [0.9, 0.7], rejected={0}) == [("early", 0.7)]
    # Off (the default): one best per track.
    assert run_policy(PublishPolicy(), [0.2, 0.62, 0.9]) == [("best", 0.9)]


def test_early_publish_never_sends_below_min_score():
    policy = PublishPolicy(min_score=0.5, early_score=0.1)
    assert run_policy(policy, [0.2, 0.4, 0.55, 0.58]) == [("early", 0.55), ("best", 0.58)]
    assert run_policy(policy, [0.2, 0.4]) == []


def test_periodic_updates_with_early_publish_skip_the_face_already_sent():
    policy = PublishPolicy(update_interval_s=2.0, early_score=0.6, early_update_margin=0.3)
    # 0.61 early; small gains wait for the interval (0.64 at t=2, 0.65 at t=4); then nothing new, nothing sent.
    events = run_policy(policy, [0.61, 0.63, 0.64, 0.65, 0.6, 0.6, 0.6, 0.6, 0.6])
    assert events == [("early", 0.61), ("update", 0.64), ("update", 0.65)]
    # Without early publish the periodic update repeats the best so far, and the end sends it again.
    assert run_policy(PublishPolicy(update_interval_s=2.0), [0.5, 0.4, 0.4, 0.4, 0.4]) == [
        ("update", 0.5), ("update", 0.5), ("best", 0.5)]


def test_messages_per_track_are_bounded_by_the_margin():
    policy = PublishPolicy(early_score=0.5, early_update_margin=0.1)
    rising = list(np.linspace(0.5, 1.0, 200))
    events = run_policy(policy, rising)
    assert events[0][0] == "early" and len(events) <= 1 + 5 + 1
    assert all(b[1] - a[1] >= 0.1 - 1e-9 for a, b in zip(events, events[1:-1]))
