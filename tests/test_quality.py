"""GAN-graded quality model: input layout, DCGAN shapes, auto-grading, export parity, training, shipped weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from faceedge.edge.errors import FaceEdgeError

from faceedge.pipelines.quality import grading
from faceedge.pipelines.quality.dcgan import GAN, Discriminator, Generator
from faceedge.pipelines.quality.model import QualityResNet, export_onnx, level_loss, onnx_parity
from faceedge.edge.quality_io import PANEL_SIZE, quality_blob, three_panel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IDENTITIES = DATA / "identities"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_three_panel_layout_is_image_then_row_then_column_filtered():
    # Stripes that vary along x only: the row (1xN) filter sees them, the column (Nx1) filter does not.
    stripes = np.zeros((PANEL_SIZE, PANEL_SIZE, 3), np.uint8)
    stripes[:, ::4] = 200
    panel = three_panel(stripes)
    assert panel.shape == (PANEL_SIZE, 3 * PANEL_SIZE, 3)
    image, rows, columns = np.split(panel, 3, axis=1)
    np.testing.assert_allclose(image, stripes / 255.0, atol=1e-6)
    assert np.abs(rows).max() > 0.5
    assert np.abs(columns).max() == 0.0
    # Transposed stripes swap the roles of the two filtered panels.
    image, rows, columns = np.split(three_panel(np.ascontiguousarray(stripes.transpose(1, 0, 2))), 3, axis=1)
    assert np.abs(rows).max() == 0.0 and np.abs(columns).max() > 0.5
    # Any face size is resized to the panel size; the model input is N x 3 x H x 3W.
    blob = quality_blob([np.full((112, 112, 3), 128, np.uint8)] * 2)
    assert blob.shape == (2, 3, PANEL_SIZE, 3 * PANEL_SIZE) and blob.dtype == np.float32


def test_dcgan_layers_match_the_seed():
    height = width = 32
    generator = Generator(height, width)
    assert generator.project.in_features == 20
    assert generator.project.out_features == 3 * (2 * height) * (2 * width)
    convs = [m for m in generator.convs if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [50, 25, 16, 16, 16, 8, 3]
    assert [c.stride[0] for c in convs] == [1, 1, 2, 1, 1, 1, 1]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    kinds = [type(m) for m in generator.convs]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * 7
    generator.eval()
    samples = generator.sample(2)
    assert samples.shape == (2, 3, height, width) and samples.min() >= 0

    discriminator = Discriminator(height, width)
    convs = [m for m in discriminator.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.padding[0]) for c in convs] == [(32, 7, 3), (32, 3, 1), (16, 3, 1)]
    kinds = [type(m) for m in discriminator.features]
    assert kinds == [nn.Conv2d, nn.LeakyReLU, nn.AvgPool2d] * 3
    linears = [m for m in discriminator.classify if isinstance(m, nn.Linear)]
    assert [(fc.in_features, fc.out_features) for fc in linears] == [(16 * 4 * 4, 1024), (1024, 1)]
    assert isinstance(discriminator.classify[-1], nn.Sigmoid)
    probability = discriminator(samples)
    assert probability.shape == (2,) and ((probability > 0) & (probability < 1)).all()


def test_gan_phase_one_only_moves_the_discriminator_and_phase_two_only_the_generator():
    torch.manual_seed(0)
    gan = GAN.create(16, 16)
    before_g = [p.detach().clone() for p in gan.generator.parameters()]
    before_d = [p.detach().clone() for p in gan.discriminator.parameters()]
    gan.train_step(torch.rand(4, 3, 16, 16))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, gan.discriminator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before_g, gan.generator.parameters()))
    assert all(p.requires_grad for p in gan.discriminator.parameters())


def _checkpoint_sets(rng, real, iterations, per_set=40):
    """Generated sets that approach the real images as iterations grow (noise and offset shrink)."""
    faces, labels = [], []
    for it in iterations:
        sigma = 0.06 * (max(iterations) - it) / (iterations[1] - iterations[0]) + 0.02
        picks = real[rng.integers(0, len(real), per_set)]
        faces.append(picks + rng.normal(0, sigma, picks.shape) + sigma)
        labels.append(np.full(per_set, it))
    return np.concatenate(faces), np.concatenate(labels)


def test_every_grading_rule_puts_later_checkpoints_at_better_levels():
    rng = np.random.default_rng(0)
    real = rng.random((60, 8, 8, 3))
    iterations = [50, 100, 150, 200, 250, 300, 350, 400, 450, 500]
    fakes, per_sample_iteration = _checkpoint_sets(rng, real, iterations)
    features = fakes.reshape(len(fakes), -1)[:, :8]
    real_features = real.reshape(len(real), -1)[:, :8]
    levels = {
        "iteration": grading.grade_by_iteration(per_sample_iteration),
        "frechet": grading.grade_by_frechet(real_features, features, per_sample_iteration)[0],
        "mse": grading.grade_by_mse(real, fakes)[0],
    }
    for rule, level in levels.items():
        assert level.min() >= 1 and level.max() <= 5, rule  # level I (0) is for real faces only
        mean_by_checkpoint = [level[per_sample_iteration == it].mean() for it in iterations]
        assert mean_by_checkpoint[-1] < mean_by_checkpoint[0], rule
        assert np.all(np.diff(mean_by_checkpoint) <= 0), (rule, mean_by_checkpoint)
    assert set(levels["iteration"].tolist()) == {1, 2, 3, 4, 5}
    np.testing.assert_array_equal(grading.grade_by_strength(np.array([0.0, 0.05, 0.3, 0.99, 1.0])), [0, 1, 2, 5, 5])


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_shift():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 8))
    assert grading.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)
    near = grading.frechet_distance(features, features + 0.1)
    far = grading.frechet_distance(features, features + 1.0)
    assert 0 < near < far and far == pytest.approx(8.0, rel=1e-3)


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_export_matches_torch_with_a_free_batch_dimension(tmp_path, batch):
    torch.manual_seed(0)
    model = QualityResNet().eval()
    path = tmp_path / "quality.onnx"
    export_onnx(model, path)
    blob = np.random.default_rng(0).random((batch, 3, PANEL_SIZE, 3 * PANEL_SIZE), dtype=np.float32)
    assert onnx_parity(model, path, blob) < 1e-5


@pytest.mark.slow
def test_classifier_loss_falls_in_a_few_steps():
    rng = np.random.default_rng(0)
    sharp = (rng.random((8, 112, 112, 3)) * 255).astype(np.uint8)
    blurred = np.stack([cv2.GaussianBlur(face, (13, 13), 0) for face in sharp])
    blob = torch.from_numpy(quality_blob(np.concatenate([sharp, blurred])))
    levels = torch.tensor([0] * 8 + [5] * 8)
    torch.manual_seed(0)
    model = QualityResNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = level_loss(model(blob), levels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


@pytest.mark.slow
def test_train_quality_command_runs_end_to_end_and_resumes(tmp_path):
    from faceedge.edge.commands import train as train_command

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    argv = ["quality", "--data", str(IDENTITIES), "--out", str(tmp_path), "--gan-iterations", "20",
            "--gan-checkpoints", "5", "--gan-samples", "4", "--degraded-per-face", "2",
            "--heldout-degraded-per-face", "1", "--epochs", "2", "--batch", "16"]
    assert train_command.run(parser.parse_args(argv)) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert not set(report["train_identities"]) & set(report["heldout_identities"])
    assert report["pool_by_source"]["gan"] == 20
    assert report["onnx_max_abs_diff"] < 1e-4
    assert len(report["epoch_losses"]) == 2
    grades = json.loads((tmp_path / "grades.json").read_text())
    assert [row["iteration"] for row in grades["by_checkpoint"]] == [4, 8, 12, 16, 20]
    # A rerun with more epochs resumes from the saved classifier instead of starting over.
    assert train_command.run(parser.parse_args(argv[:-4] + ["--epochs", "3", "--batch", "16"])) == 0
    resumed = json.loads((tmp_path / "report.json").read_text())
    assert resumed["epoch_losses"][:2] == report["epoch_losses"] and len(resumed["epoch_losses"]) == 3
    # Settings that shaped the cached stages cannot change under a resume.
    with pytest.raises(FaceEdgeError, match="gan_iterations"):
        train_command.run(parser.parse_args(argv + ["--gan-iterations", "40"]))


def test_shipped_model_scores_a_sharp_held_out_face_above_its_degraded_copy():
    from faceedge.edge.align import align_face
    from faceedge.edge.config import InferenceConfig, SelectConfig
    from faceedge.edge.detect import YuNetDetector
    from faceedge.edge.select import Candidate, make_scorer
    from faceedge.pipelines.dataset import largest_face
    from faceedge.pipelines.degrade import gaussian_blur, jpeg_compress, resample

    scorer = make_scorer(SelectConfig(scorer="quality"), InferenceConfig(threads=1))
    photo = cv2.imread(str(IDENTITIES / "deepface_00" / "img1.jpg"))  # a held-out identity
    detection = largest_face(YuNetDetector().detect(photo))
    sharp = align_face(photo, detection.landmarks)
    degraded = jpeg_compress(resample(gaussian_blur(sharp, 9), 6.0, "bilinear"), 50)
    candidates = [Candidate(face, detection, photo.shape[:2]) for face in (sharp, degraded)]
    scores = scorer.score(candidates)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert scores[0] > scores[1] + 0.1
