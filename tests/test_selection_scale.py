"""Selection training past one process, on a slice of identities_large: shards and workers give exactly the
single-process samples, a few epochs lower the loss, a 2-process gloo DDP run follows the single-process one,
and the held-out split never trains on an identity it reports on."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceedge.edge.cli import main

REPO = Path(__file__).resolve().parents[1]
LARGE = REPO.parent / "shared" / "data" / "identities_large"
SLICE = ["lfw_Abdullah_al-Attiyah", "lfw_Abid_Hamid_Mahmud_Al-Tikriti", "lfw_Adel_Al-Jubeir", "lfw_Aicha_El_Ouafi"]
pytestmark = pytest.mark.skipif(not LARGE.is_dir(), reason="shared identities_large not present")
SAMPLE_ARGS = ["--holdout-fraction", "0", "--per-photo", "8"]
TRAIN_ARGS = ["--epochs", "3", "--batch-size", "16"]


def _slice(root: Path, names) -> Path:
    root.mkdir()
    for name in names:
        (root / name).symlink_to(LARGE / name)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _slice(tmp_path_factory.mktemp("large") / "ids", SLICE)


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(["train", "selection", "--data", str(data), "--out", str(out), *SAMPLE_ARGS, *extra])


@pytest.fixture(scope="module")
def single(data, tmp_path_factory) -> Path:
    """samples.npz made by one process."""
    out = tmp_path_factory.mktemp("single")
    assert _train(data, out, "--samples-only") == 0
    return out / "samples.npz"


def _arrays(path: Path) -> dict:
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def _assert_same_samples(path: Path, reference: Path) -> None:
    got, want = _arrays(path), _arrays(reference)
    assert set(got) == set(want)
    for key in want:
        if key != "stats":
            assert np.array_equal(got[key], want[key]), key
    got_stats, want_stats = json.loads(str(got["stats"])), json.loads(str(want["stats"]))
    for key in ("probes", "cases", "positive_fraction", "photos", "probe_photos", "attempts", "recipe"):
        assert got_stats[key] == want_stats[key], key


@pytest.mark.slow
def test_shards_and_workers_give_exactly_the_single_process_samples(data, single, tmp_path):
    assert len(_arrays(single)["labels"]) > 40
    shards = tmp_path / "shards"
    for shard in ("0/2", "1/2"):
        assert _train(data, shards, "--shard", shard) == 0
    parts = sorted(shards.glob("samples.shard-*-of-2.npz"))
    assert len(parts) == 2 and all(len(_arrays(p)["labels"]) for p in parts)
    merged = tmp_path / "merged"
    assert _train(data, merged, "--merge-shards", *map(str, reversed(parts)), "--samples-only") == 0
    _assert_same_samples(merged / "samples.npz", single)
    workers = tmp_path / "workers"
    assert _train(data, workers, "--workers", "2", "--samples-only") == 0
    _assert_same_samples(workers / "samples.npz", single)
    # A missing shard is refused, naming the problem.
    from faceedge.edge.errors import ConfigError

    assert _train(data, tmp_path / "half", "--merge-shards", str(parts[0])) == ConfigError.exit_code


def _losses(out: Path) -> list[float]:
    return json.loads((out / "report.json").read_text())["epoch_losses"]


@pytest.mark.slow
def test_few_epochs_lower_the_loss_and_two_gloo_processes_follow_one(single, data, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        out.mkdir()
        shutil.copy(single, out / "samples.npz")
    assert _train(data, one, *TRAIN_ARGS) == 0
    alone = _losses(one)
    assert len(alone) == 3 and alone[-1] < alone[0]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "faceedge.edge.cli", "train", "selection", "--data", str(data), "--out", str(two), *SAMPLE_ARGS,
               *TRAIN_ARGS]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((two / "report.json").read_text())
    assert report["processes"] == 2 and report["distributed_backend"] == "gloo"
    together = report["epoch_losses"]
    assert len(together) == 3 and together[-1] < together[0]
    # Same data order, same global batch, same initial weights: only per-share batch norm and dropout differ.
    assert np.allclose(together, alone, rtol=0.15), (together, alone)
    assert (two / "selection.onnx").is_file() and (two / "checkpoint.pt").is_file()


@pytest.mark.slow
def test_held_out_split_never_trains_on_an_identity_it_reports_on(tmp_path):
    from faceedge.edge.identity_split import split_identities

    names = SLICE + ["lfw_Adolfo_Aguilar_Zinser", "celeb5_madonna"]
    data = _slice(tmp_path / "ids", names)
    train, held = split_identities(sorted(names), 0.5)
    assert train and held
    out = tmp_path / "run"
    assert main(["train", "selection", "--data", str(data), "--out", str(out), "--holdout-fraction", "0.5",
                 "--per-photo", "2", "--samples-only"]) == 0
    trained_on = set(_arrays(out / "samples.npz")["identities"].tolist())
    assert trained_on and trained_on <= set(train)
    report = tmp_path / "eval.json"
    assert main(["eval", "selection", "--data", str(data), "--json", str(report), "--holdout-fraction", "0.5",
                 "--probes-per-photo", "2", "--tracks-per-photo", "1", "--track-length", "2", "--bootstrap", "10",
                 "--compare", "itself=weights:selection.onnx"]) == 0
    evaluated = json.loads(report.read_text())
    assert evaluated["split"] == "test" and evaluated["identities"] == held
    assert not trained_on & set(evaluated["identities"])
    # The shipped model compared with itself: every paired difference is exactly zero.
    for figures in evaluated["compared"]["itself"]["minus_selection"].values():
        assert all(f["value"] == 0 and f["interval"] == [0, 0] for f in figures.values())


def test_track_faces_get_the_four_case_labels_against_every_enrolment():
    from faceedge.edge.recognizers import open_recognizer
    from faceedge.pipelines.selection.track_samples import ClipFaces, label_track_faces

    rng = np.random.default_rng(0)
    enrolled = {name: v / np.linalg.norm(v) for name, v in zip("abc", rng.normal(size=(3, 128)))}

    def near(name: str, weight: float) -> np.ndarray:
        v = weight * enrolled[name] + (1 - weight) * rng.normal(size=128) / np.sqrt(128)
        return v / np.linalg.norm(v)

    # a close to its own (positive), b weakly like itself (correct but unsure), c's face most like a (wrong).
    faces = ClipFaces(np.zeros((3, 112, 112, 3), np.uint8), ["a", "b", "c"],
                      np.stack([near("a", 0.9), near("b", 0.15), near("a", 0.8)]))
    samples = label_track_faces([faces], enrolled, open_recognizer("sface"), 0.363, {})
    assert samples.labels.tolist() == [1, 0, 0]
    assert samples.stats["cases"] == {"correct_confident": 1, "correct_unsure": 1, "wrong_confident": 1,
                                      "wrong_unsure": 0}
    assert samples.identities.tolist() == ["a", "b", "c"]
    assert samples.genuine_similarity[0] > 0.8 and samples.genuine_similarity[2] < 0.363


@pytest.mark.slow
def test_training_with_track_samples_names_only_training_people(tmp_path):
    data = REPO.parent / "shared" / "data" / "identities"
    out = tmp_path / "run"
    assert main(["train", "selection", "--data", str(data), "--out", str(out), "--holdout-fraction", "0.35",
                 "--per-photo", "2", "--epochs", "2", "--batch-size", "16", "--track-clips", "2",
                 "--track-people", "6", "--track-seconds", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    tracks = report["samples"]["track_samples"]
    assert tracks["clips"] == 2 and tracks["probes"] > 20 and sum(tracks["cases"].values()) == tracks["probes"]
    with np.load(out / "track_samples.npz") as npz:
        assert set(npz["identities"].tolist()) <= set(report["train_identities"])
    assert (out / "selection.onnx").is_file() and len(report["epoch_losses"]) == 2
