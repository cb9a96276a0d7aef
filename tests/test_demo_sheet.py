"""The demo's contact sheet: an even, bounded sample of each track's candidates, and one row per track."""

import numpy as np

from faceedge.edge.demo import CandidateStrips, EvenSample, track_rows
from faceedge.edge.detect import Detection
from faceedge.edge.select import Candidate


def test_even_sample_stays_bounded_and_spread_over_everything_added():
    for count in (3, 8, 17, 100, 1000):
        sample = EvenSample(8)
        for i in range(count):
            sample.add(i)
        items = sample.items()
        assert len(sample.kept) <= 16 and len(items) == min(count, 8)
        assert items[0] == 0 and items == sorted(items)
        if count >= 100:  # spread over the whole track, not its start
            assert items[-1] >= 0.85 * count
            gaps = np.diff(items)
            assert gaps.max() <= 2 * gaps.min()


def test_rows_put_every_face_sent_among_the_sampled_candidates():
    strips = CandidateStrips(per_track=4)
    face = np.zeros((112, 112, 3), np.uint8)
    for frame in range(40):
        det = Detection(np.array([0 if frame > 30 else 100, 100, 200, 200], np.float32), np.zeros((5, 2)), 0.9)
        track_id = None if frame < 2 else 7
        strips.offered("cam", "key-a", track_id, Candidate(face, det, (720, 1280), frame), frame / 40)
    records = [{"stream": "cam", "track_id": 7, "frame_index": 3, "score": 0.075, "edge_rejected": False,
                "event": "early"},
               {"stream": "cam", "track_id": 7, "frame_index": 30, "score": 0.75, "edge_rejected": False,
                "event": "best"}]
    (row,) = track_rows(records, strips)
    assert row["chosen"] is records[-1]
    frames = [cell["frame_index"] for cell in row["cells"]]
    assert frames == sorted(frames) and {3, 30} <= set(frames)
    sampled = [cell for cell in row["cells"] if "record" not in cell]
    assert len(sampled) == 4 and sampled[0]["frame_index"] == 0  # offered before the track was confirmed
    assert any(cell["touches_edge"] for cell in sampled)  # the last frames touched the left border
