"""One track, one person: shot cuts end tracks, and a face that is someone else splits its track.

First frame by frame on synthetic faces, without threads; then through the real pipeline on clips made of photos."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import av
import cv2
import numpy as np
import pytest

from conftest import DATA
from faceedge.edge.align import ARCFACE_TEMPLATE, similarity_to
from faceedge.edge.clip_writer import write_h264
from faceedge.edge.config import load_config
from faceedge.edge.cuts import CutDetector, dissimilarity, thumbnail_signature
from faceedge.edge.detect import YuNetDetector
from faceedge.edge.identity import IdentityCheck, TrackIdentity
from faceedge.edge.metrics import Metrics
from faceedge.edge.pipeline import Pipeline
from faceedge.edge.source import detector_shape
from faceedge.edge.stream_tracks import MAX_HELD
from test_pipeline_stages import Stage, face_at

WIDTH, HEIGHT, FPS = 640, 360, 24
PERSON_A = DATA / "identities" / "biden" / "biden.jpg"
PERSON_B = DATA / "identities" / "angelina_jolie" / "1.jpg"
# Where both people's landmarks are placed: the ArcFace template scaled to 40 px between the eyes.
PLACE = (ARCFACE_TEMPLATE - ARCFACE_TEMPLATE[2]) * (40.0 / 35.24) + np.array([WIDTH / 2, HEIGHT / 2])


def placed(photo_path, detector) -> np.ndarray:
    """The photo warped so that its face's landmarks land on PLACE, filling a WIDTH x HEIGHT frame."""
    photo = cv2.imread(str(photo_path))
    face = max(detector.detect(photo), key=lambda d: d.size)
    return cv2.warpAffine(photo, similarity_to(face.landmarks, PLACE), (WIDTH, HEIGHT), borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(128, 128, 128))


def textured_background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (9, 16, 3)).astype(np.uint8), (WIDTH, HEIGHT),
                      interpolation=cv2.INTER_CUBIC)


def face_patch(frame: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The background with only the face region (an ellipse about PLACE) taken from `frame`."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    centre = tuple(int(v) for v in PLACE.mean(axis=0))
    cv2.ellipse(mask, centre, (55, 70), 0, 0, 360, 255, -1)
    return np.where(mask[..., None] > 0, frame, background)


def write_clip(path, frames: list[np.ndarray]):
    return write_h264(path, frames, FPS, (WIDTH, HEIGHT), crf=18)


class ShadeRecognizer:
    """Tells people apart by their synthetic faces' shade: dark is one person, light another."""

    def embed(self, faces):
        return np.array([[1.0, 0.0] if face.mean() < 128 else [0.0, 1.0] for face in faces])


def test_someone_else_in_a_track_splits_it_and_each_part_keeps_its_own_face():
    stage = Stage(identity=IdentityCheck(ShadeRecognizer(), min_cosine=0.3, min_score=0.5, interval=2))
    change = 6
    for index in range(12):  # the same place; the second person's faces never beat the first's best
        dark = index < change
        stage.frame(index, [face_at(100, 100, 0.8 if dark else 0.7, index, shade=0 if dark else 255)])
    for index in range(12, 18):
        stage.frame(index, [])
    assert stage.metric("faceedge_track_splits_total") == 1
    assert stage.metric("faceedge_identity_checks_total") >= 2  # at least the reference and the face that disagreed
    parts = {m.meta["track_id"]: m for m in stage.sent}
    assert sorted(parts) == [1, 2] and all(m.meta["event"] == "best" for m in stage.sent)
    # The old part ends with the first person's face; the second person is published under the new id.
    assert parts[1].meta["frame_index"] < change and parts[1].candidate.aligned.mean() == 0
    assert parts[2].meta["frame_index"] >= change and parts[2].candidate.aligned.mean() == 255
    # At most interval - 1 of the intruder's frames counted in the old part.
    assert change <= parts[1].meta["frames_seen"] <= change + 1


class CrossingRecognizer:
    """Dark faces are one person, light another; mid-grey faces are the dark person again, as a turned or
    blurred face of them would embed: nearer their own reference, but within `min_cosine` of the light one's."""

    dark, light = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    back = np.array([0.8, 0.45]) / np.hypot(0.8, 0.45)

    def embed(self, faces):
        return np.array([self.dark if face.mean() < 30 else self.light if face.mean() > 200 else self.back
                         for face in faces])


def test_the_earlier_person_swapping_back_after_a_split_splits_the_track_again():
    recognizer = CrossingRecognizer()
    assert recognizer.back @ recognizer.light >= 0.3  # the new part's reference alone would take them in
    stage = Stage(identity=IdentityCheck(recognizer, min_cosine=0.3, min_score=0.5, interval=1))
    shades = [0] * 6 + [255] + [60] * 5  # the light person covers the dark one for one frame
    for index, shade in enumerate(shades):
        stage.frame(index, [face_at(100, 100, 0.8, index, shade=shade)])
    stage.stage.end_all()
    frames_per_id = {}
    for _, _, track_id, frame, _ in stage.observer.offers:
        frames_per_id.setdefault(track_id, []).append(frame)
    assert stage.metric("faceedge_track_splits_total") == 2
    # (frames 0-1: the track before the tracker confirmed it)
    assert frames_per_id == {None: [0, 1], 1: [2, 3, 4, 5], 2: [6], 3: list(range(7, 12))}


class GatedRecognizer(ShadeRecognizer):
    """Embeds a light (second person's) face only once the test opens the gate, so that check stays in flight."""

    def __init__(self):
        self.gate = threading.Event()

    def embed(self, faces):
        if any(face.mean() >= 128 for face in faces):
            assert self.gate.wait(10)
        return super().embed(faces)


def test_a_check_in_flight_holds_its_tracks_offers_and_the_verdict_gives_them_to_their_part():
    recognizer = GatedRecognizer()
    change, frames, held = 6, 6 + MAX_HELD + 4, []
    with ThreadPoolExecutor(1, thread_name_prefix="identity") as thread:
        stage = Stage(identity=IdentityCheck(recognizer, min_cosine=0.3, min_score=0.5, interval=2,
                                             submit=thread.submit))
        tracks = stage.stage.streams["cam"]
        for index in range(frames):
            if index == change:  # far longer than the worker takes to hold MAX_HELD offers
                threading.Timer(1.0, recognizer.gate.set).start()
            dark = index < change
            stage.frame(index, [face_at(100, 100, 0.8 if dark else 0.7, index, shade=0 if dark else 255)])
            held.append(max((len(t.held) for t in tracks.identities.values()), default=0))
            if change + 2 <= index < change + MAX_HELD:
                # Nothing after the checked frame reaches the track, or the observer, before the verdict.
                assert max(frame for *_, frame, _ in stage.observer.offers) <= change + 1
        stage.stage.end_all()
    assert max(held) == MAX_HELD  # then the worker waited for the verdict rather than hold more
    assert stage.metric("faceedge_track_splits_total") == 1
    parts = {m.meta["track_id"]: m for m in stage.sent}
    assert sorted(parts) == [1, 2]
    assert parts[1].candidate.aligned.mean() == 0 and parts[2].candidate.aligned.mean() == 255
    assert change <= parts[1].meta["frames_seen"] <= change + 1
    # Every offer was observed once, in frame order, and the second person's under the new part's id.
    observed = [frame for *_, frame, _ in stage.observer.offers]
    assert observed == list(range(frames))
    assert {track_id for _, _, track_id, frame, _ in stage.observer.offers if frame >= change + 2} == {2}


def test_a_cut_ends_every_track_of_its_stream():
    stage = Stage("track.hit_counter_max=30")
    shots = [cv2.resize(textured_background(seed), (64, 36)) for seed in (1, 2)]
    cut = 5
    for index in range(10):  # the face stays where it was: only the cut can end its track
        stage.frame(index, [face_at(100, 100, 0.8, index)], image=shots[index >= cut])
    assert stage.metric("faceedge_scene_cuts_total") == 1
    assert stage.events() == [("best", 1, 0)]
    stage.stage.end_all()
    assert stage.events() == [("best", 1, 0), ("best", 2, cut)]


@dataclass
class AlignedFace:  # all of a candidate the checks' triggers look at
    aligned: np.ndarray
    detection: object = None
    frame_index: int = 0

    def __post_init__(self):
        if self.detection is None:
            self.detection = face_at(100, 100, 0.9, self.frame_index).detection


class OfferLog:
    def __init__(self):
        self.offers = []  # (published track id or None, frame index)

    def offered(self, stream, track_key, track_id, candidate, score):
        self.offers.append((track_id, candidate.frame_index))


def run_clip(path, *overrides):
    config = load_config(None, ["publish.bind=tcp://127.0.0.1:0", "metrics.enabled=false", "enhance.enabled=false",
                                *overrides], {"streams": [{"id": "clip", "url": str(path)}]})
    metrics, log = Metrics(), OfferLog()
    assert Pipeline(config, metrics=metrics, observer=log).run() == 0
    return metrics, log


def sides_per_track(log: OfferLog, change: int) -> dict:
    """Published track id -> the sides of the change (before, after) its offers came from."""
    sides = {}
    for track_id, frame in log.offers:
        if track_id is not None:
            sides.setdefault(track_id, set()).add(frame >= change)
    return sides


@pytest.fixture(scope="module")
def people():
    detector = YuNetDetector()
    return placed(PERSON_A, detector), placed(PERSON_B, detector)


def test_a_cut_clip_two_people_are_never_one_track(people, tmp_path):
    person_a, person_b = people
    cut = 14
    clip = write_clip(tmp_path / "cut.mp4", [person_a] * cut + [person_b] * 14)
    # The identity check is off: the cut alone must end the track.
    metrics, log = run_clip(clip, "track.identity_check=false")
    assert metrics.value("faceedge_scene_cuts_total", stream="clip") == 1
    sides = sides_per_track(log, cut)
    assert sorted(map(sorted, sides.values())) == [[False], [True]]  # one published track each side, none on both
    assert metrics.value("faceedge_faces_published_total", stream="clip", event="best") == 2


def test_a_face_replaced_in_place_without_a_cut_splits_its_track(people, tmp_path):
    person_a, person_b = people
    background = textured_background()
    a, b = face_patch(person_a, background), face_patch(person_b, background)
    # A leaves, nobody is there for 3 frames (fewer than track.hit_counter_max), B appears where A was.
    frames = [a] * 14 + [background] * 3 + [b] * 14
    change = 17
    detector = CutDetector(load_config().track.cut_threshold)
    assert not any(detector.is_cut(frame) for frame in frames)  # no cut to help
    metrics, log = run_clip(write_clip(tmp_path / "replaced.mp4", frames), "track.identity_check=true")
    assert metrics.value("faceedge_scene_cuts_total", stream="clip") == 0
    assert metrics.value("faceedge_track_splits_total", stream="clip") >= 1
    sides = sides_per_track(log, change)
    assert all(len(s) == 1 for s in sides.values()), sides
    assert {False, True} <= set().union(*sides.values())  # both people were published under their own ids


def test_a_face_replaced_in_place_from_one_frame_to_the_next_splits_its_track(people, tmp_path):
    # One person steps in front of another: the face in the same place is someone else's, with no frame
    # unmatched and no cut; only the change of face can start the check.
    person_a, person_b = people
    background = textured_background()
    change = 14
    frames = [face_patch(person_a, background)] * change + [face_patch(person_b, background)] * 14
    metrics, log = run_clip(write_clip(tmp_path / "in_front.mp4", frames), "track.identity_check=true")
    assert metrics.value("faceedge_scene_cuts_total", stream="clip") == 0
    assert metrics.value("faceedge_track_splits_total", stream="clip") == 1
    sides = sides_per_track(log, change)
    assert sorted(map(sorted, sides.values())) == [[False], [True]]


def test_a_change_of_face_is_measured_against_the_last_few_faces_not_only_the_last():
    check = IdentityCheck(ShadeRecognizer(), min_score=0.5, face_change=0.4)
    track = TrackIdentity()
    rng = np.random.default_rng(0)
    face, hand = (rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(2))
    covered = face.copy()
    covered[:, :70] = hand[:, :70]  # a hand over most of the face
    due = [check.choose(track, None, AlignedFace(image), 0.9) is not None for image in [face, face, covered, face, face]]
    # The hand coming is a change; the face coming back is the face of two frames before, not a change.
    assert due == [False, False, True, False, False]


def test_a_box_that_jumps_makes_a_check_due_and_a_walking_face_does_not():
    check = IdentityCheck(ShadeRecognizer(), min_score=0.5, face_change=2.0, box_jump=0.25)  # no change of face
    face = np.full((112, 112, 3), 128, np.uint8)

    def due(track, x, size, index, score=0.9):
        return check.choose(track, None, AlignedFace(face, face_at(x, 100, 0.9, index, size).detection, index),
                            score) is not None

    walking = TrackIdentity()
    assert not any(due(walking, 100 + 4 * i, 80 * 1.02 ** i, i) for i in range(20))  # 4 px and 2 % a frame
    assert not due(walking, 100 + 4 * 25, 80 * 1.02 ** 25, 25)  # five frames unseen: the same pace
    assert due(walking, 100 + 4 * 26 + 40, 80 * 1.02 ** 26, 26)  # half a face in one frame: someone else's place
    running = TrackIdentity()  # a third of a face a frame, steadily: motion, not a jump, once it is seen moving
    for i in range(2):
        due(running, 100 + 30 * i, 90, i)
    assert not any(due(running, 100 + 30 * i, 90, i) for i in range(2, 12))
    assert due(running, 100 + 30 * 11, 90, 12)  # stopping dead in one frame misses the prediction by a third
    grown = TrackIdentity()
    assert not due(grown, 100, 80, 0)
    assert not due(grown, 100, 180, 1, score=0.2)  # more than twice the size at once: due, but not identifiable
    assert due(grown, 100, 180, 2)  # ... so it waits for the first identifiable face
    assert not due(TrackIdentity(), 400, 80, 0)  # a track's first face has nothing to jump from
    off = IdentityCheck(ShadeRecognizer(), min_score=0.5, face_change=2.0, box_jump=None)
    track = TrackIdentity()
    assert not any(off.choose(track, None, AlignedFace(face, face_at(x, 100, 0.9, i).detection, i), 0.9)
                   for i, x in enumerate([100, 200, 100]))


def test_a_still_face_does_not_split_its_track(people, tmp_path):
    person_a, _ = people
    metrics, log = run_clip(write_clip(tmp_path / "still.mp4", [person_a] * 24), "track.identity_check=true")
    assert metrics.value("faceedge_track_splits_total", stream="clip") == 0
    assert len(sides_per_track(log, 0)) == 1


def cuts_in(path) -> list[int]:
    """Frame indices the cut detector marks, fed as the pipeline feeds it (detector resolution, BGR)."""
    detector, cuts = CutDetector(load_config().track.cut_threshold), []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            width, height = detector_shape(frame.width, frame.height, 640)
            if detector.is_cut(frame.reformat(width, height, "bgr24").to_ndarray()):
                cuts.append(index)
    return cuts


@pytest.mark.slow
def test_no_spurious_cuts_on_real_clips_without_cuts():
    for name in ("people_1080p.mp4", "tensorflow_tfjs-models_facemesh_demo_input.mp4"):
        assert cuts_in(DATA / "video" / name) == [], name


def test_the_shot_cuts_of_a_real_clip_are_found_and_its_flicker_is_not():
    # Tears of Steel excerpt: hard cuts at frames 21, 65 and 185; a hologram flicker from 190 to 205.
    assert cuts_in(DATA / "video" / "awwkl_ZWM_clip_01_tears_of_steel.mp4") == [21, 65, 185]


def test_cut_measure_ignores_brightness_and_handles_flat_frames():
    frame = textured_background(1)
    detector = CutDetector(0.5)
    assert not detector.is_cut(frame)  # the first frame has nothing to differ from
    assert not detector.is_cut(cv2.convertScaleAbs(frame, alpha=0.5, beta=20))  # a flash or exposure change
    assert not detector.is_cut(np.clip(frame * [1.3, 1.0, 0.7], 0, 255).astype(np.uint8))  # white balance
    assert detector.is_cut(textured_background(2))  # another picture
    assert detector.is_cut(np.zeros_like(frame))  # to black
    assert not detector.is_cut(np.zeros_like(frame))  # black stays black
    assert detector.is_cut(frame)  # from black
    detector.reset()
    assert not detector.is_cut(textured_background(3))


def test_a_cut_between_scenes_laid_out_alike_in_grey_is_found_by_their_colours():
    # Both scenes share the green channel's layout, which dominates grey; blue and red hold other pictures.
    layout, first, second = (textured_background(seed)[..., 1] for seed in (4, 5, 6))
    scene_a = np.dstack([first // 3, layout, second // 3])
    scene_b = np.dstack([second // 3, layout, first // 3])
    assert dissimilarity(thumbnail_signature(scene_a), thumbnail_signature(scene_b)) < 0.5  # grey alone misses it
    detector = CutDetector(0.5)
    assert not detector.is_cut(scene_a)
    assert detector.is_cut(scene_b)
