import json

import cv2
import jsonschema
import numpy as np
import pytest

from edge.detect import Detection
from edge.publish import MessageError, decode_message, encode_message, load_schema
from edge.select import BestFace, Candidate, HeuristicScorer


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


def meta(**changes):
    base = {"schema": "faceedge.face/1", "instance": "box1", "event": "best", "stream": "cam0", "track_id": 3,
            "frame_index": 10, "pts_s": 0.4, "wall_time": "2026-01-01T00:00:00+00:00", "bbox": [1, 2, 3, 4],
            "landmarks": [[1, 2]] * 5, "det_score": 0.9, "score": 0.5, "scorer": {"name": "h", "version": "1"},
            "sr_applied": False, "sr_model": None, "edge_rejected": False, "frames_seen": 4,
            "track_duration_s": 0.2}
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
