"""`faceedge eval stream`: the synthetic ground truth, the metrics, and one short run end to end."""

from __future__ import annotations

import json
import subprocess

import av
import numpy as np
import pytest

from faceedge.pipelines.stream_eval.judge import PersonTruth, Published, judge
from faceedge.pipelines.stream_eval.people import cluster_people
from faceedge.pipelines.stream_eval.synth import box_iou, choose_identities, load_people, make_clips

from conftest import DATA, REPO, faceedge_cmd

IDENTITIES = DATA / "identities"


@pytest.fixture(scope="module")
def yunet():
    from faceedge.edge.detect import YuNetDetector

    return YuNetDetector(threads=1)


@pytest.mark.slow
def test_synthetic_truth_matches_yunet(yunet, tmp_path):
    from faceedge.edge.align import align_face
    from faceedge.edge.recognize import SFaceRecognizer

    people = load_people(IDENTITIES, choose_identities(IDENTITIES, "all", 0.35), 3, yunet, seed=1)
    assert len(people) == 3 and all(p.gallery.path not in {s.path for s in p.shown} for p in people)
    truth = make_clips(people, tmp_path, seed=1, clips=1, seconds=4)[0]
    assert truth.people and 0 < truth.cut_frame < len(truth.frames)
    recognizer = SFaceRecognizer(threads=1)
    import cv2

    galleries = {}
    for p in people:
        image = cv2.imread(p.gallery.path)
        galleries[p.identity] = recognizer.embed([align_face(image, max(yunet.detect(image), key=lambda d: d.size)
                                                             .landmarks)])[0]
    ious, correct = [], []
    with av.open(truth.path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 8:
                continue
            image = frame.to_ndarray(format="bgr24")
            found = yunet.detect(image)
            for face in truth.frames[index]:
                width = face.box[2] - face.box[0]
                if face.visibility < 0.95 or width < 40:
                    continue
                det = max(found, key=lambda d: box_iou(face.box, d.bbox), default=None)
                ious.append(box_iou(face.box, det.bbox) if det is not None else 0.0)
                if det is not None:
                    emb = recognizer.embed([align_face(image, det.landmarks)])[0]
                    correct.append(max(galleries, key=lambda name: galleries[name] @ emb) == face.identity)
    assert len(ious) >= 5
    assert np.median(ious) >= 0.75 and min(ious) >= 0.5
    assert np.mean(correct) >= 0.8


def test_metrics_on_a_known_case():
    people = [PersonTruth("a", 1.0, 0.8), PersonTruth("b", 2.0, 0.5), PersonTruth("c", 0.5, 0.6),
              PersonTruth("d", None, None)]
    published = [Published("a", 0.4, 3.0), Published("a", 0.6, 5.0, sr=(0.6, 0.7)),
                 Published("b", 0.3, 2.5, sr=(0.3, 0.2)), Published(None, float("nan"), 4.0)]
    tracks = [["a", "a", None, "a"], ["b", "a", "b"], [None, None], ["c"]]
    r = judge(people, published, 0.363, tracks)
    assert r["people"] == 4 and r["people_recovered"] == 1  # only a reaches 0.363
    assert r["oracle_recoverable"] == 3
    # a: 0.6/0.8, b: 0.3/0.5, c: nothing published -> 0; d: never seen by the oracle, left out.
    assert r["efficiency_people"] == 3 and r["median_efficiency"] == pytest.approx(0.6)
    assert r["identity_switches"] == 2 and r["tracks_judged"] == 3 and r["impure_tracks"] == 1
    assert r["track_purity"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["messages"] == 4 and r["messages_unattributed"] == 1 and r["messages_per_person"] == 0.75
    assert r["median_latency_s"] == pytest.approx(1.25)  # a: 3.0 - 1.0, b: 2.5 - 2.0
    assert r["sr"] == {"touched": 2, "lowered": 1, "mean_gain": 0.0, "fraction_lowered": 0.5}
    assert r["median_choice_efficiency"] is None  # no offers known


def test_choice_efficiency_is_published_over_best_offered():
    people = [PersonTruth("a", 0.0, 0.8), PersonTruth("b", 0.0, 0.5), PersonTruth("c", 0.0, 0.6)]
    published = [Published("a", 0.6), Published("b", 0.5)]
    # a: offered up to 0.75 (oracle 0.8), published 0.6; b: published its best offer; c: never offered.
    r = judge(people, published, 0.363, offered={"a": 0.75, "b": 0.5})
    rows = {row["person"]: row for row in r["persons"]}
    assert rows["a"]["choice_efficiency"] == pytest.approx(0.8) and rows["b"]["choice_efficiency"] == 1.0
    assert rows["c"]["choice_efficiency"] is None and rows["c"]["offered_similarity"] is None
    assert r["median_choice_efficiency"] == pytest.approx(0.9)
    assert r["median_offered_efficiency"] == pytest.approx((0.75 / 0.8 + 1.0) / 2, abs=1e-4)


def test_clusters_become_people_by_frames_seen():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 128))
    faces, frames = [], []
    for person, count in enumerate([20, 12, 2]):  # the third is seen twice: not a person
        for i in range(count):
            v = centres[person] + rng.normal(scale=0.3, size=128)
            faces.append(v / np.linalg.norm(v))
            frames.append(i)
    aligned = [np.zeros((112, 112, 3), np.uint8)] * len(faces)
    found = cluster_people(np.array(faces), np.array(frames), aligned, 0.363, 5, 0.1)
    assert [r.frames_seen for r in found.references] == [20, 12]
    assert found.clusters == 3 and found.dropped == [2]
    assert found.references[0].medoid_frame in range(20)


@pytest.mark.slow
@pytest.mark.slow
def test_eval_stream_end_to_end(tmp_path):
    out = tmp_path / "report.json"
    video = DATA / "video" / "intel-iot-devkit_sample-videos_face-demographics-walking_preview.mp4"
    result = subprocess.run(faceedge_cmd(
        "--log-level", "warning", "eval", "stream", "--data", str(IDENTITIES), "--split", "all", "--people", "3",
        "--clips", "1", "--seconds", "3", "--video", str(video), "--configs", "faceedge,detector,naive,oracle",
        "--json", str(out), "--sheet", str(tmp_path / "sheet.png"), "--work", str(tmp_path / "clips")),
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    synthetic = report["synthetic"]
    assert synthetic["people"] >= 2
    assert 0 <= synthetic["people_recovered"] <= synthetic["people"]
    assert synthetic["identity_switches"] >= 0 and synthetic["tracks_judged"] >= 1
    assert 0 < synthetic["median_efficiency"] <= 1.5
    # The published face is one of the offered ones, so the scorer's choice cannot beat the best offer.
    assert 0 < synthetic["median_choice_efficiency"] <= 1.0 + 1e-9
    clip = report["clips"][video.name]
    assert clip["people"] >= 1 and 0 <= clip["people_recovered"] <= clip["people"]
    assert clip["median_efficiency"] is not None
    assert set(report["baselines"]) == {"detector", "naive", "oracle"}
    for name in ("detector", "naive", "oracle"):
        for key in ("people", "people_recovered", "identity_switches", "median_efficiency"):
            assert key in report["baselines"][name]["synthetic"]
        assert "people_recovered" in report["baselines"][name]["clips"][video.name]
    assert report["baselines"]["oracle"]["synthetic"]["median_efficiency"] == 1.0
    assert report["split"]["side"] == "all" and report["split"]["people_used"] == 3
    assert (tmp_path / "sheet.png").stat().st_size > 1000
    assert "people" in result.stdout and "naive" in result.stdout


def test_tracks_are_published_ids_whatever_the_tracker_keys():
    from faceedge.pipelines.stream_eval.clips import Clip
    from faceedge.pipelines.stream_eval.runner import Offer
    from faceedge.pipelines.stream_eval.synth import ClipTruth, FaceTruth

    box_a, box_b = [0.0, 0.0, 40.0, 40.0], [100.0, 0.0, 140.0, 40.0]
    frames = [[FaceTruth("a", box_a, 1.0), FaceTruth("b", box_b, 1.0)] for _ in range(6)]
    clip = Clip("c.mp4", "c", "c.mp4", scan=None, references={}, found="truth",
                truth=ClipTruth("c.mp4", 25, (320, 180), 23, 3, ["a", "b"], frames))
    key = ("c", (0, 1))
    offers = [Offer(key, None, 0, np.array(box_a)), Offer(key, 1, 1, np.array(box_a)),
              # the identity check split the key: the rest goes on under id 2
              Offer(key, 2, 2, np.array(box_b)), Offer(key, None, 3, np.array(box_b)),
              # a replaced tracker reuses norfair's numbering under a new generation
              Offer(("c", (1, 1)), None, 4, np.array(box_a)), Offer(("c", (1, 1)), 3, 5, np.array(box_a)),
              Offer(("c", (1, 2)), None, 5, np.array(box_b))]  # never confirmed: no track
    assert clip.tracks(offers) == [["a", "a"], ["b", "b"], ["a", "a"]]


def test_a_messages_stream_time_is_its_streams_last_detected_frame():
    from faceedge.edge.detect import Detection
    from faceedge.edge.enhance import PassThrough
    from faceedge.edge.face_message import face_message
    from faceedge.edge.select import BestFace, Candidate, DetectorScorer
    from faceedge.pipelines.stream_eval.runner import Collector

    class Counters:  # 10 frames detected at interval 2: the last detected one is frame 27
        def value(self, name, stream):
            return {"faceedge_frames_processed_total": 10, "faceedge_detect_interval": 2}[name]

    face = np.zeros((112, 112, 3), np.uint8)
    best = BestFace()
    best.offer(Candidate(face, Detection(np.array([0, 0, 50, 60], np.float32), np.zeros((5, 2), np.float32), 0.9),
                         (360, 640), 3, 0.12, face, 1.7e9), 0.8, False, 1.7e9)
    message = face_message(best, "best", stream="clip", track_id=1, instance="box", scorer=DetectorScorer())
    collector = Collector(Counters())
    collector.save(message.encode(PassThrough().enhance(message.candidate), 90))
    assert collector.messages[0].stream_frame == 27


def test_a_face_is_attributed_to_the_person_seen_not_to_one_hidden_behind():
    from faceedge.pipelines.stream_eval.synth import FaceTruth, match_truth

    detected = [100.0, 100.0, 200.0, 220.0]
    hidden = FaceTruth("behind", [100.0, 100.0, 200.0, 220.0], 0.0)  # the very same box, not a pixel of it visible
    seen = FaceTruth("in_front", [110.0, 95.0, 215.0, 225.0], 1.0)
    assert box_iou(hidden.box, detected) > box_iou(seen.box, detected) >= 0.4
    assert match_truth([hidden, seen], detected) == "in_front"
    partly = FaceTruth("partly", [100.0, 100.0, 200.0, 220.0], 0.6)  # alone, a partly covered face is still found
    assert match_truth([partly], detected) == "partly"
    assert match_truth([hidden], detected) is None
    assert match_truth([FaceTruth("far", [300.0, 100.0, 400.0, 220.0], 1.0)], detected) is None
