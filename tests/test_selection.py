"""Recognition-aware selection model: label rule, SCE loss, training, ONNX export, runtime scorer, eval metrics."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceedge.edge.config import InferenceConfig, SelectConfig
from faceedge.edge.face_input import SELECTION_INPUT
from faceedge.edge.select import Candidate, LearnedScorer, make_scorer
from faceedge.pipelines.selection.protocol import best_of_track, error_versus_discard, track_choice, track_groups
from faceedge.pipelines.selection.labels import CASES, four_case_labels, has_genuine_mate, match_gallery
from faceedge.pipelines.selection.model import (SelectionNet, similarity_regression, symmetric_cross_entropy,
                                                within_track_ranking)
from faceedge.pipelines.selection.train import (FACE_INPUT, Samples, TrainSettings, epoch_groups, export_onnx,
                                                train_model)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WEIGHTS = Path(__file__).resolve().parents[1] / "edge" / "weights" / "selection.onnx"


def test_four_case_label_rule():
    correct = np.array([True, True, False, False])
    similarity = np.array([0.5, 0.2, 0.5, 0.2])
    labels, case = four_case_labels(correct, similarity, threshold=0.363)
    assert labels.tolist() == [1, 0, 0, 0]
    assert [CASES[c] for c in case] == ["correct_confident", "correct_unsure", "wrong_confident", "wrong_unsure"]
    # "At or above" the threshold counts as confident.
    assert four_case_labels(np.array([True]), np.array([0.363]), 0.363)[0].tolist() == [1]


def test_gallery_matching_skips_the_probe_photo():
    gallery = np.eye(3, dtype=np.float32)
    probes = np.array([[1.0, 0.0, 0.0], [0.0, 0.9, 0.1]], np.float32)
    m = match_gallery(probes, ["a", "b"], ["a1.jpg", "b1.jpg"], gallery, ["a", "b", "c"], ["a1.jpg", "b2.jpg", "c1.jpg"])
    # Probe 0's only exact match is its own photo, so it is matched elsewhere (similarity 0) and has no genuine mate.
    assert m.top1_similarity[0] == pytest.approx(0.0) and m.genuine_similarity[0] == -1.0
    assert m.top1_identity[1] == "b" and m.top1_correct.tolist() == [False, True]
    assert has_genuine_mate(["a", "b"], ["a1.jpg", "b1.jpg"], ["a", "b", "c"], ["a1.jpg", "b2.jpg", "c1.jpg"]).tolist() \
        == [False, True]


def test_symmetric_cross_entropy_hand_computed():
    log_floor = math.log(1e-4)  # the patent clamps log 0 to log 1e-4
    p = 0.8
    logit = torch.tensor([math.log(p / (1 - p))])
    # label 1: CE = -ln 0.8; RCE = -(0.8 ln 1 + 0.2 ln 1e-4) = -0.2 ln 1e-4
    ce, rce = -math.log(0.8), -0.2 * log_floor
    assert float(symmetric_cross_entropy(logit, torch.tensor([1]), 1.0, 0.0)) == pytest.approx(ce, rel=1e-5)
    assert float(symmetric_cross_entropy(logit, torch.tensor([1]), 0.0, 1.0)) == pytest.approx(rce, rel=1e-5)
    assert float(symmetric_cross_entropy(logit, torch.tensor([1]), 0.1, 1.0)) == pytest.approx(0.1 * ce + rce, rel=1e-5)
    # label 0, batch mean with the first sample: CE = -ln 0.2, RCE = -0.8 ln 1e-4
    both = symmetric_cross_entropy(logit.repeat(2), torch.tensor([1, 0]), 0.5, 2.0)
    expected = np.mean([0.5 * ce + 2.0 * rce, 0.5 * -math.log(0.2) + 2.0 * -0.8 * log_floor])
    assert float(both) == pytest.approx(expected, rel=1e-5)
    # A confident right answer costs almost nothing; the loss stays finite when saturated.
    assert float(symmetric_cross_entropy(torch.tensor([50.0]), torch.tensor([1]))) < 1e-6
    assert math.isfinite(float(symmetric_cross_entropy(torch.tensor([-50.0]), torch.tensor([1]))))


def test_similarity_regression_on_hand_computed_values():
    # Targets 40 * (0.6 - 0.35) = 10 and 40 * (0.3 - 0.35) = -2; squared errors 4 and 1.
    loss = similarity_regression(torch.tensor([8.0, -1.0]), torch.tensor([0.6, 0.3]), threshold=0.35, scale=40.0)
    assert float(loss) == pytest.approx(2.5)
    # A logit on its target costs nothing, whatever the label says.
    assert float(similarity_regression(torch.tensor([0.0]), torch.tensor([0.35]), 0.35, 40.0)) == 0.0


def test_within_track_ranking_prefers_the_recognisers_order():
    genuine = torch.tensor([0.2, 0.6, 0.4, 0.1, 0.5, 0.3])  # two groups of three
    agreeing = 40.0 * (genuine - 0.363)
    reversed_order = -agreeing
    loss = lambda logits: float(within_track_ranking(logits, genuine, 3, temperature=0.05, scale=40.0))
    assert loss(agreeing) < loss(reversed_order)
    # Only the order within a group counts: shifting one group's logits together changes nothing.
    shifted = agreeing + torch.tensor([5.0, 5.0, 5.0, 0.0, 0.0, 0.0])
    assert loss(shifted) == pytest.approx(loss(agreeing), rel=1e-6)
    # With logits on the pull's targets the prediction equals the target, so the loss is the target's entropy.
    target = torch.softmax(genuine.view(2, 3) / 0.05, dim=1)
    entropy = float(-(target * target.log()).sum(dim=1).mean())
    assert loss(agreeing) == pytest.approx(entropy, rel=1e-5)


def test_epoch_groups_hold_one_person_each_and_use_a_face_once():
    identities = np.array(["a"] * 7 + ["b"] * 4 + ["c"] * 2)
    groups = epoch_groups(len(identities), identities, 3, np.random.default_rng(0))
    assert all(len(g) == 3 and len(set(identities[g])) == 1 for g in groups)
    used = np.concatenate(groups)
    assert len(used) == len(set(used.tolist())) == 9  # a: 2 groups, b: 1, c: too few for one
    # A group size of 1 is a plain permutation of every face.
    assert sorted(np.concatenate(epoch_groups(5, None, 1, np.random.default_rng(0))).tolist()) == [0, 1, 2, 3, 4]


def test_track_choice_on_hand_made_groups():
    genuine = np.array([0.5, 0.8, 0.2, 0.1, 0.3, 0.35])
    scores = np.array([0.9, 0.1, 0.0, 0.0, 0.5, 0.2])  # group 1 picks 0.5 of 0.8; group 2 picks 0.3 of 0.35
    figures = track_choice(scores, genuine, [np.array([0, 1, 2]), np.array([3, 4, 5])], threshold=0.363)
    assert figures["median_efficiency"] == pytest.approx(np.median([0.5 / 0.8, 0.3 / 0.35]))
    # Group 1 reaches the threshold and its choice does too; group 2 cannot reach it.
    assert figures["recovered"] == 1.0 and figures["reachable"] == 1
    groups = track_groups(np.array(["a"] * 5 + ["b"] * 3 + ["c"]), 4, seed=0)
    assert sorted(len(g) for g in groups) == [3, 4]  # a: 4 (its fifth face alone is no track), b: 3, c: none


def _toy_faces(n: int, seed: int = 0):
    """Textured 112x112 'faces': label 1 sharp, label 0 the same texture heavily blurred."""
    rng = np.random.default_rng(seed)
    sharp = rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)
    labels = (np.arange(n) % 2).astype(np.int64)
    faces = np.stack([f if y else cv2.GaussianBlur(f, (13, 13), 0) for f, y in zip(sharp, labels)])
    return faces, labels


def _toy_samples(n: int) -> Samples:
    faces, labels = _toy_faces(n)
    genuine = np.where(labels == 1, 0.6, 0.2)  # the sharp faces match their identity better
    return Samples(faces, labels, genuine, {"threshold": 0.363})


def test_few_step_training_reduces_loss_and_resumes(tmp_path):
    samples = _toy_samples(96)
    settings = TrainSettings(epochs=4, batch_size=32, lr=3e-3, seed=0, width=8)
    checkpoint = tmp_path / "checkpoint.pt"
    _, history = train_model(samples, settings, checkpoint=checkpoint, progress=False)
    assert len(history) == 4 and history[-1] < history[0]
    more = TrainSettings(epochs=5, batch_size=32, lr=3e-3, seed=0, width=8)
    _, resumed = train_model(samples, more, checkpoint=checkpoint, progress=False)
    assert resumed[:4] == history and len(resumed) == 5  # picked up at epoch 4, ran only epoch 5


def test_training_on_track_like_groups_reduces_loss():
    samples = _toy_samples(96)
    samples.identities = np.repeat(np.array(["a", "b", "c", "d"]), 24)
    settings = TrainSettings(epochs=4, batch_size=32, lr=3e-3, seed=0, width=8, group_size=8, ranking_weight=1.0)
    _, history = train_model(samples, settings, progress=False)
    assert len(history) == 4 and history[-1] < history[0]


def test_samples_without_genuine_similarity_are_refused(tmp_path):
    from faceedge.edge.errors import ConfigError
    from faceedge.pipelines.selection.samples import load_samples

    old = tmp_path / "samples.npz"
    np.savez(old, aligned=np.zeros((1, 112, 112, 3), np.uint8), labels=np.ones(1), cases=np.zeros(1),
             identities=np.array(["a"]), stats="{}")
    with pytest.raises(ConfigError, match="older version"):
        load_samples(old)


def test_onnx_export_matches_torch_with_dynamic_batch(tmp_path):
    import onnxruntime as ort

    torch.manual_seed(0)
    net = SelectionNet(width=8).eval()
    faces, _ = _toy_faces(5)
    batch = FACE_INPUT(faces)
    diff = export_onnx(net, tmp_path / "m.onnx", batch)
    assert diff < 1e-4
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logit"]
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
    for size in (1, 3):
        out = session.run(None, {"face": batch[:size]})[0]
        assert out.shape == (size,) and np.abs(out - expected[:size]).max() < 1e-4


def test_scorer_ranks_faces_a_float32_sigmoid_would_tie(tmp_path):
    """Logits 18 and 24 are both exactly 1.0 through a float32 sigmoid; the scorer keeps them apart."""
    import onnx
    from onnx import TensorProto, helper

    from faceedge.edge.detect import Detection

    # logit = 48 * mean(face input), so the face's brightness sets its logit.
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["face"], ["mean"], axes=[1, 2, 3], keepdims=0),
         helper.make_node("Mul", ["mean", "gain"], ["logit"])],
        "brightness", [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("gain", TensorProto.FLOAT, [], [48.0])])
    path = tmp_path / "logit.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    # FACE_INPUT maps pixel v to (v - 127.5) / 128: mean 0.375 -> logit 18, mean 0.5 -> logit 24.
    faces = [np.full((112, 112, 3), 127.5 + 128 * m, np.float32).round().astype(np.uint8) for m in (0.375, 0.5)]
    detection = Detection(np.array([0, 0, 112, 112], np.float32), np.zeros((5, 2), np.float32), 0.9)
    scores = LearnedScorer("selection", str(path), FACE_INPUT).score([Candidate(f, detection, (200, 200)) for f in faces])
    assert np.float32(1) / (1 + np.exp(-np.float32(18))) == np.float32(1)  # what the graph's sigmoid gave
    assert 0.999999 < scores[0] < scores[1] < 1.0


def test_face_input_is_shared_and_shaped():
    faces = np.zeros((2, 112, 112, 3), np.uint8)
    blob = SELECTION_INPUT(faces)
    assert blob.shape == (2, 3, FACE_INPUT.size, FACE_INPUT.size) and blob.dtype == np.float32
    assert blob.min() == pytest.approx(-127.5 / 128)


def test_learned_scorer_refuses_a_model_of_another_input_size(tmp_path):
    from faceedge.edge.errors import ModelFileError
    from faceedge.edge.face_input import FaceInput

    net = SelectionNet(width=8).eval()
    export_onnx(net, tmp_path / "m.onnx", FACE_INPUT(np.zeros((2, 112, 112, 3), np.uint8)))
    with pytest.raises(ModelFileError, match=rf"takes {FACE_INPUT.size}x{FACE_INPUT.size} faces but .* feeds 48x48"):
        LearnedScorer("selection", str(tmp_path / "m.onnx"), FaceInput(size=48), InferenceConfig(threads=1))


def _real_face():
    from faceedge.edge.align import align_face
    from faceedge.edge.detect import YuNetDetector

    image = cv2.imread(str(DATA / "identities" / "obama" / "obama.jpg"))
    detection = max(YuNetDetector(threads=1).detect(image), key=lambda d: d.size)
    return align_face(image, detection.landmarks), detection


@pytest.mark.skipif(not (DATA / "identities").is_dir(), reason="shared data not present")
def test_shipped_selection_scorer_ranks_sharp_above_blurred():
    face, detection = _real_face()
    blurred = cv2.GaussianBlur(cv2.resize(cv2.resize(face, (16, 16), interpolation=cv2.INTER_AREA), (112, 112)),
                               (9, 9), 0)
    scorer = make_scorer(SelectConfig(), InferenceConfig(threads=1))
    assert isinstance(scorer, LearnedScorer) and scorer.name == "selection"
    assert len(scorer.version) == 12
    scores = scorer.score([Candidate(face, detection, (1024, 820)), Candidate(blurred, detection, (1024, 820))])
    assert scores.shape == (2,) and scores[0] > scores[1]
    assert scorer.score([]).shape == (0,)


def test_error_versus_discard_and_best_of_track():
    failures = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    good = np.where(failures, 0.0, 1.0)  # a scorer that puts both failures lowest
    fractions, rates, auc = error_versus_discard(good, failures, max_discard=0.3, steps=4)
    assert fractions.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert rates.tolist() == pytest.approx([0.2, 1 / 9, 0.0, 0.0])
    assert auc == pytest.approx(0.1 * (0.2 + 1 / 9) / 2 + 0.1 * (1 / 9) / 2)
    assert error_versus_discard(-good, failures, 0.3, 4)[2] > auc
    tracks = [np.array([0, 1, 2]), np.array([3, 4])]
    correct = np.array([False, True, False, True, False])
    assert best_of_track(np.array([0.1, 0.9, 0.2, 0.8, 0.1]), correct, tracks) == 1.0
    assert best_of_track(np.array([0.9, 0.1, 0.2, 0.1, 0.8]), correct, tracks) == 0.0


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "identities").is_dir(), reason="shared data not present")
def test_train_cli_end_to_end_resumes_and_guards_its_samples(tmp_path):
    import json

    from faceedge.edge.cli import main
    from faceedge.edge.errors import ConfigError

    data = tmp_path / "ids"
    data.mkdir()
    for name in ("obama", "biden", "deepface_08"):
        (data / name).symlink_to(DATA / "identities" / name)
    out = tmp_path / "run"
    argv = ["train", "selection", "--data", str(data), "--out", str(out), "--holdout-fraction", "0",
            "--per-photo", "6", "--epochs", "1", "--batch-size", "16"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["train_identities"] == ["biden", "deepface_08", "obama"] and report["held_out_identities"] == []
    assert 0 < report["samples"]["positive_fraction"] < 1 and report["onnx_parity_max_abs_diff"] < 1e-4
    assert len(report["epoch_losses"]) == 1
    assert main(argv[:-3] + ["2", "--batch-size", "16"]) == 0  # resumes: only epoch 2 is trained
    resumed = json.loads((out / "report.json").read_text())
    assert resumed["epoch_losses"][0] == report["epoch_losses"][0] and len(resumed["epoch_losses"]) == 2
    assert main(argv[:9] + ["7", "--epochs", "1"]) == ConfigError.exit_code  # other --per-photo, same samples


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "identities").is_dir(), reason="shared data not present")
def test_eval_cli_writes_every_scorer(tmp_path):
    import json

    from faceedge.edge.cli import main

    data = tmp_path / "ids"
    data.mkdir()
    for name in ("obama", "biden"):
        (data / name).symlink_to(DATA / "identities" / name)
    out = tmp_path / "eval.json"
    assert main(["eval", "selection", "--data", str(data), "--json", str(out), "--plot", str(tmp_path / "edc.png"),
                 "--split", "all", "--holdout-fraction", "0", "--probes-per-photo", "4", "--tracks-per-photo", "1",
                 "--track-length", "3", "--bootstrap", "50"]) == 0
    report = json.loads(out.read_text())
    from faceedge.edge.config import DetectConfig

    assert report["min_face"] == DetectConfig().min_face  # by default the eval applies the runtime's floor
    assert report["split"] == "all" and report["identities"] == ["biden", "obama"]
    assert report["recognizer"]["name"] == "sface" and report["thresholds"]["recognizer"] == 0.363
    assert report["interval"] == {"level": 0.95, "bootstrap_over": "identities", "resamples": 50}
    expected = {"selection", "heuristic", "detector_score", "face_size", "laplacian_sharpness", "random"}
    assert expected <= set(report["scorers"])
    for row in report["scorers"].values():
        for threshold in ("recognizer", "fmr_0.001"):
            for area, most in (("area_20", 0.2), ("area_30", 0.3)):
                figure = row["edc"][threshold][area]
                low, high = figure["interval"]
                assert 0.0 <= low <= high <= most and 0.0 <= figure["value"] <= most
            assert row["edc"][threshold]["area_20"]["value"] <= row["edc"][threshold]["area_30"]["value"]
            assert report["oracle"][threshold]["area_30"]["value"] <= row["edc"][threshold]["area_30"]["value"] + 1e-12
        figure = row["best_of_track_rank1"]
        assert 0.0 <= figure["interval"][0] <= figure["interval"][1] <= 1.0 and 0.0 <= figure["value"] <= 1.0
    assert (tmp_path / "edc.png").stat().st_size > 0


def test_probe_maker_drops_faces_below_the_runtime_min_face():
    """The runtime never scores a face whose box is below detect.min_face, so neither do the probes."""
    from faceedge.edge.config import DetectConfig
    from faceedge.edge.detect import Detection
    from faceedge.pipelines.dataset import FaceRecord
    from faceedge.pipelines.selection.probes import MIN_FACE, ProbeMaker

    assert MIN_FACE == DetectConfig().min_face

    class StubDetector:
        """Finds one face of a fixed box side, centred on the nose of the shrunk view."""

        def __init__(self, side):
            self.side = side

        def detect(self, image):
            h, w = image.shape[:2]
            cx, cy = w / 2, h / 2
            box = np.array([cx - self.side / 2, cy - self.side / 2, cx + self.side / 2, cy + self.side / 2], np.float32)
            marks = np.array([[cx - 5, cy - 4], [cx + 5, cy - 4], [cx, cy], [cx - 4, cy + 5], [cx + 4, cy + 5]],
                             np.float32)
            return [Detection(box, marks, 0.9)]

    image = np.full((300, 300, 3), 128, np.uint8)
    marks = np.array([[130, 130], [170, 130], [150, 150], [135, 175], [165, 175]], np.float32)
    record = FaceRecord("a", Path("a.jpg"), np.zeros((112, 112, 3), np.uint8),
                        Detection(np.array([100, 100, 200, 200], np.float32), marks, 0.99), 0.0, 0.0)
    for side, kept in ((MIN_FACE - 0.5, False), (MIN_FACE + 0.5, True)):
        maker = ProbeMaker(StubDetector(side), face_size_range=(20.0, 20.0), severity_range=(0.05, 0.05))
        probe = maker(image, record, np.random.default_rng(0))
        assert (probe is not None) == kept


def test_fmr_threshold_on_hand_made_impostor_scores():
    from faceedge.pipelines.selection.protocol import fmr_threshold

    impostors = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.7, 0.4, 0.6, 0.0, 0.8])
    # 10 comparisons: FMR 0.1 allows one false match (0.9), so the threshold sits just above 0.8.
    t = fmr_threshold(impostors, fmr=0.1)
    assert 0.8 < t < 0.8 + 1e-12 and np.mean(impostors >= t) == 0.1
    assert np.mean(impostors >= np.nextafter(t, -1)) == 0.2  # any lower and FMR doubles
    # FMR 0.25 allows two (0.9, 0.8); below one comparison in ten, none: above the highest.
    assert 0.7 < fmr_threshold(impostors, 0.25) < 0.7 + 1e-12
    assert 0.9 < fmr_threshold(impostors, 0.05) < 0.9 + 1e-12
    # Ties at the cut are all left unmatched, so FMR stays at or below the target.
    tied = np.array([0.9, 0.8, 0.8, 0.1])
    assert np.mean(tied >= fmr_threshold(tied, 0.5)) == 0.25
    # Only the top scores of 1000 comparisons: FMR 1e-3 needs the two highest.
    assert 0.7 < fmr_threshold(np.array([0.9, 0.7]), 1e-3, total=1000) < 0.7 + 1e-12
    with pytest.raises(ValueError, match="need the 2 highest"):
        fmr_threshold(np.array([0.9]), 1e-3, total=1000)


def test_paired_difference_on_a_hand_made_case():
    from faceedge.pipelines.selection.evaluate import identity_bootstrap, paired_difference
    from faceedge.pipelines.selection.protocol import error_versus_discard, partial_area

    # 10 probes, the first 3 fail. A scores the failures lowest (a perfect ranking), B highest.
    failures = np.arange(10) < 3
    a, b = -failures.astype(float), failures.astype(float)
    ids = [f"p{i % 5}" for i in range(10)]
    resamples = identity_bootstrap(ids, ids[:4], 50, seed=0)
    hits_a, hits_b = np.array([1, 0, 0, 1]), np.array([1, 1, 1, 1])
    diff = paired_difference(a, b, failures, hits_a, hits_b, resamples)
    fa, ra, _ = error_versus_discard(a, failures)
    fb, rb, _ = error_versus_discard(b, failures)
    assert diff["area_30"]["value"] == pytest.approx(partial_area(fb, rb, 0.3) - partial_area(fa, ra, 0.3))
    assert diff["area_30"]["value"] > 0 and diff["area_30"]["interval"][0] >= 0  # B is never better
    assert diff["best_of_track_rank1"]["value"] == 0.5
    low, high = diff["best_of_track_rank1"]["interval"]
    assert 0 <= low <= 0.5 <= high <= 1


def test_impostor_top_keeps_what_the_fmr_threshold_needs():
    from faceedge.pipelines.selection.protocol import fmr_threshold, impostor_top

    rng = np.random.default_rng(0)
    probes, gallery = rng.normal(size=(300, 8)), rng.normal(size=(40, 8))
    probe_ids, gallery_ids = rng.integers(0, 5, 300).astype(str), rng.integers(0, 5, 40).astype(str)
    sims = probes @ gallery.T
    every = sims[probe_ids[:, None] != gallery_ids[None, :]]
    top, total = impostor_top(probes, probe_ids, gallery, gallery_ids, lambda a, b: a @ b.T, 1e-2, chunk=64)
    assert total == len(every) and len(top) == int(1e-2 * total) + 1
    assert fmr_threshold(top, 1e-2, total) == fmr_threshold(every, 1e-2)


def test_weighted_error_versus_discard_equals_repeating_the_probes():
    from faceedge.pipelines.selection.protocol import partial_area

    rng = np.random.default_rng(1)
    scores, failures = rng.random(50), rng.random(50) < 0.3
    weights = rng.integers(0, 4, 50)
    repeated = np.repeat(np.arange(50), weights)
    order = np.argsort(scores[repeated], kind="stable")
    f, direct, _ = error_versus_discard(scores[repeated], failures[repeated], order=order)
    _, weighted, _ = error_versus_discard(scores, failures, weights=weights)
    assert np.allclose(direct, weighted)
    assert partial_area(f, weighted, 0.2) == pytest.approx(np.trapezoid(weighted[:21], f[:21]))
