"""SR: loss terms, differentiable SFace, pruning, ONNX parity, a short training run, gating, fusion."""

import math

import cv2
import numpy as np
import pytest
import torch

from faceedge.edge.detect import Detection
from faceedge.edge.align import ARCFACE_TEMPLATE as TEMPLATE
from faceedge.edge.enhance import SREnhancer, SuperResolver, face_mask, fuse
from faceedge.edge.select import Candidate
from faceedge.pipelines import degrade as dg
from faceedge.pipelines.sr import losses
from faceedge.pipelines.sr.data import SR_STEPS, PairSampler, Source
from faceedge.pipelines.sr.export import export_onnx, parity
from faceedge.pipelines.sr.models import Generator, count_macs, count_parameters
from faceedge.pipelines.sr.pruning import prune_block, prune_generator
from faceedge.pipelines.sr.train import TrainConfig, Trainer, augmentation_factor, next_severity

torch.set_num_threads(1)


def _face_image(seed=0, size=112):
    """A smooth textured picture with a face-like layout: what the samplers and the enhancer need."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (14, 14, 3)).astype(np.uint8)
    image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    for x, y in TEMPLATE * size / 112:
        cv2.circle(image, (int(x), int(y)), 4, (20, 20, 20), -1)
    return image


# --- loss terms on hand-made inputs -------------------------------------------------------------

def test_gan_losses_match_the_log_formula():
    zero = torch.zeros(4)
    assert losses.generator_gan_loss(zero).item() == pytest.approx(math.log(2))
    # D(G) = sigmoid(3): -log D = log(1 + e^-3)
    assert losses.generator_gan_loss(torch.full((2,), 3.0)).item() == pytest.approx(math.log1p(math.exp(-3)))
    assert losses.discriminator_loss(torch.full((2,), 20.0), torch.full((2,), -20.0)).item() < 1e-6
    assert losses.discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))


def test_identity_loss_is_one_minus_cosine():
    def embed(x):
        return torch.nn.functional.normalize(x.flatten(1), dim=1)

    a = torch.tensor([[[[1.0, 0.0]]]])
    b = torch.tensor([[[[0.0, 1.0]]]])
    c = torch.tensor([[[[1.0, 1.0]]]])
    assert losses.identity_loss(embed, a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.identity_loss(embed, a, b).item() == pytest.approx(1.0)
    assert losses.identity_loss(embed, a, c).item() == pytest.approx(1 - 1 / math.sqrt(2))


def test_joint_loss_uses_seed_003_weights():
    weights = losses.LossWeights(identity=0.5)
    assert (weights.l1, weights.gan) == (1.0, 1e-4)
    terms = {"l1": torch.tensor(0.2), "gan": torch.tensor(3.0), "identity": torch.tensor(0.4)}
    assert losses.joint_loss(terms, weights).item() == pytest.approx(0.2 + 3e-4 + 0.2)


def test_distillation_loss_is_zero_for_identical_student():
    feats, out = torch.rand(2, 8, 4, 4), torch.rand(2, 3, 8, 8)
    assert losses.distillation_loss(feats, feats, out, out).item() == 0.0
    assert losses.distillation_loss(feats + 0.5, feats, out, out).item() == pytest.approx(0.5)


# --- differentiable recogniser ------------------------------------------------------------------

@pytest.mark.slow
def test_torch_sface_matches_onnxruntime():
    from faceedge.edge.recognize import SFaceRecognizer
    from faceedge.pipelines.sr.sface_torch import SFaceTorch

    faces = np.stack([_face_image(seed) for seed in range(3)])
    expected = SFaceRecognizer(threads=1).embed(faces)
    model = SFaceTorch()
    bgr01 = torch.from_numpy(faces.transpose(0, 3, 1, 2).copy()).float() / 255.0
    bgr01.requires_grad_(True)
    got = model.embed_bgr01(bgr01)
    assert np.abs(got.detach().numpy() - expected).max() < 1e-4
    got.sum().backward()  # gradients reach the image: usable as a loss
    assert bgr01.grad is not None and bgr01.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.parameters())


# --- degradations are the selection helper's -----------------------------------------------------

def test_sr_pairs_use_the_shared_recipe_ranges():
    assert set(SR_STEPS) <= set(dg.STEP_ORDER)
    recipe = dg.Degradation(probabilities=dict(SR_STEPS))
    rng = np.random.default_rng(0)
    for _ in range(100):
        params = recipe.sample((112, 112, 3), rng)
        if "gaussian_blur" in params:
            assert params["gaussian_blur"]["ksize"] in dg.GAUSSIAN_KERNEL_SIZES
        if "motion_blur" in params:
            assert dg.MOTION_LENGTH_RANGE[0] <= params["motion_blur"]["length"] <= dg.MOTION_LENGTH_RANGE[1]
            assert dg.MOTION_ANGLE_RANGE[0] <= params["motion_blur"]["angle"] <= dg.MOTION_ANGLE_RANGE[1]
        if "jpeg" in params:
            assert dg.JPEG_QUALITY_RANGE[0] <= params["jpeg"]["quality"] <= dg.JPEG_QUALITY_RANGE[1]
    sampler = PairSampler([Source("a", _face_image(), TEMPLATE.copy())], scale=4, seed=1)
    lows, highs = sampler.batch(3)
    assert lows.shape == (3, 28, 28, 3) and highs.shape == (3, 112, 112, 3)
    again = PairSampler([Source("a", _face_image(), TEMPLATE.copy())], scale=4, seed=1).batch(3)
    assert np.array_equal(again[0], lows)  # deterministic under its seed


def test_augmentation_factor_moves_severity():
    assert augmentation_factor(0.2, 0.8, 0.8) == 1.0
    assert augmentation_factor(0.2, 0.8, 0.2) == 0.0
    assert augmentation_factor(0.2, 0.8, 0.5) == pytest.approx(0.5)
    assert math.isnan(augmentation_factor(0.50, 0.51, 0.5))  # discriminator not separating yet
    assert next_severity(0.5, float("nan")) == 0.5
    assert next_severity(0.5, 0.9) == pytest.approx(0.6)
    assert next_severity(0.5, 0.1) == pytest.approx(0.4)
    assert next_severity(0.5, 0.4) == 0.5
    assert next_severity(1.0, 0.9) == 1.0 and next_severity(0.3, 0.0) == 0.3


# --- generator, pruning, export -----------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_shapes_and_onnx_parity(scale, tmp_path):
    torch.manual_seed(0)
    gen = Generator(scale=scale).eval()
    assert gen(torch.rand(1, 3, 112 // scale, 112 // scale)).shape == (1, 3, 112, 112)
    path = export_onnx(gen, tmp_path / "g.onnx")
    assert parity(gen, path) < 1e-4


def test_pruning_keeps_the_ratio_it_reports():
    torch.manual_seed(0)
    gen = Generator(channels=16, blocks=3).eval()
    low, high = torch.rand(4, 3, 28, 28), torch.rand(4, 3, 112, 112)
    pruned, report = prune_generator(gen, 0.5, low, high, max_psnr_drop=100.0)
    for layer, block in zip(report, pruned.body):
        assert layer.applied == pytest.approx(0.5)
        assert block.conv1.out_channels == block.conv2.in_channels == layer.channels_after == 8
    rebuilt = Generator(channels=16, inner=pruned.config["inner"])
    assert count_parameters(rebuilt) == count_parameters(pruned) < count_parameters(gen)
    assert count_macs(pruned, 28) < count_macs(gen, 28)
    # A check no cut can pass backs every layer off to zero.
    whole, report = prune_generator(gen, 0.5, low, high, max_psnr_drop=-1.0)
    assert all(layer.applied == 0.0 for layer in report)
    assert count_parameters(whole) == count_parameters(gen)


def test_prune_block_keeps_the_strongest_filters():
    torch.manual_seed(0)
    block = Generator(channels=8, blocks=1).body[0]
    with torch.no_grad():
        block.conv1.weight[3] *= 100
    kept = block.conv1.weight[3].clone()
    assert prune_block(block, 0.75) == 2
    assert any(torch.equal(w, kept) for w in block.conv1.weight)


# --- training -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_few_training_steps_reduce_the_loss():
    from faceedge.pipelines.sr.sface_torch import SFaceTorch

    sources = [Source(str(i), _face_image(i), TEMPLATE.copy()) for i in range(3)]
    config = TrainConfig(epochs=3, steps_per_epoch=8, batch=4, identity_batch=2, lr=2e-3, severity=0.5)
    trainer = Trainer(config, PairSampler(sources, 4, 0.5, seed=0), SFaceTorch())
    gen = trainer.fit(Generator(), config.epochs, "teacher")
    history = trainer.history
    assert len(history) == 3 and {"l1", "gan", "identity", "factor", "severity"} <= set(history[0])
    assert history[-1]["total"] < history[0]["total"]
    assert history[-1]["check_psnr"] > history[0]["check_psnr"]
    assert isinstance(gen, Generator)



def test_student_steps_distil_from_one_pass_of_teacher_and_student():
    import copy

    torch.manual_seed(0)
    teacher = Generator().eval()
    x = torch.rand(2, 3, teacher.lr_size, teacher.lr_size)
    with torch.no_grad():
        out, feats = teacher.forward_with_features(x)
        assert torch.equal(out, teacher(x)) and torch.equal(feats, teacher.features(x))
    sources = [Source(str(i), _face_image(i), TEMPLATE.copy()) for i in range(2)]
    config = TrainConfig(epochs=1, steps_per_epoch=2, batch=2, severity=0.5,
                         weights=losses.LossWeights(distill=1.0))
    distill = {}
    for name, student in (("copy", copy.deepcopy(teacher)), ("fresh", Generator())):
        trainer = Trainer(config, PairSampler(sources, 4, 0.5, seed=0), None)
        trainer.fit(student, 1, "student", teacher)
        distill[name] = trainer.history[0]["distill"]
    # A student that starts as the teacher stays near it; one from another initialisation does not.
    assert 0.0 <= distill["copy"] < 0.5 * distill["fresh"], distill

# --- in the pipeline: gating and fusion ----------------------------------------------------------

@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    torch.manual_seed(0)
    path = export_onnx(Generator().eval(), tmp_path_factory.mktemp("sr") / "sr.onnx", {"name": "sr", "version": "t"})
    return SuperResolver(str(path))


def _candidate(iod: float, frame_size: int = 400, turn: float = 1.0):
    """A face whose frontal eye distance is `iod` source px; `turn` < 1 squeezes the landmarks
    sideways about the nose, as a head turning away does (the eyes draw together in the image)."""
    frame = _face_image(1, frame_size)
    scale = iod / float(np.linalg.norm(TEMPLATE[1] - TEMPLATE[0]))
    landmarks = (TEMPLATE - TEMPLATE[2]) * scale
    landmarks[:, 0] *= turn
    landmarks = (landmarks + frame_size / 2).astype(np.float32)
    bbox = np.array([*(landmarks.min(0) - 10 * scale), *(landmarks.max(0) + 10 * scale)], np.float32)
    from faceedge.edge.align import align_face, context_box

    x1, y1, x2, y2 = context_box(bbox, frame.shape, 0.5)
    return Candidate(aligned=align_face(frame, landmarks), detection=Detection(bbox, landmarks, 0.9),
                     frame_shape=frame.shape[:2], context=frame[y1:y2, x1:x2].copy(), context_origin=(x1, y1))


class RecordingResolver:
    """The resolver, recording the side of every input it restores."""

    def __init__(self, resolver):
        self.inner, self.inputs = resolver, []
        self.lr_size, self.name = resolver.lr_size, resolver.name

    def lowres(self, aligned):
        return self.inner.lowres(aligned)

    def restore(self, lowres):
        self.inputs.append(lowres.shape[0])
        return self.inner.restore(lowres)


def test_a_small_frontal_face_is_restored_and_its_context_zoomed_to_its_resolution(resolver):
    from faceedge.edge.align import alignment_scale, capture_size, inter_ocular_distance

    small = _candidate(7.0)  # a 22 px capture: below the generator's 28 px input
    assert capture_size(small.detection.landmarks) < 28
    result = SREnhancer(resolver).enhance(small)
    assert result.sr_applied and result.model == "sr:t"
    assert result.face.shape == (112, 112, 3) and result.original_face is small.aligned
    # The context is upscaled by the alignment scale (here 5x: 112 aligned px over a 22 px capture).
    zoom = alignment_scale(small.detection.landmarks)
    assert zoom == pytest.approx(float(np.linalg.norm(TEMPLATE[1] - TEMPLATE[0])) / inter_ocular_distance(
        small.detection.landmarks), rel=1e-3)
    assert result.context.shape[0] == round(small.context.shape[0] * zoom)


def test_a_turned_large_face_is_not_restored(resolver):
    from faceedge.edge.align import capture_size, inter_ocular_distance

    turned = _candidate(50.0, turn=0.1)  # 160 px capture; its eyes are 5 px apart in the image
    assert inter_ocular_distance(turned.detection.landmarks) < 6
    assert capture_size(turned.detection.landmarks) > 140
    passed = SREnhancer(resolver).enhance(turned)
    assert not passed.sr_applied and passed.model is None
    assert passed.face is turned.aligned and passed.context is turned.context


def test_the_generator_input_is_never_smaller_than_the_capture_resolution(resolver):
    from faceedge.edge.align import capture_size
    from faceedge.edge.errors import ConfigError

    recording = RecordingResolver(resolver)
    enhancer = SREnhancer(recording)
    restored, passed = 0, 0
    for iod in (3.0, 5.0, 8.0, 8.8, 9.5, 12.0, 18.0, 30.0, 60.0):
        for turn in (1.0, 0.6, 0.2):
            candidate = _candidate(iod, turn=turn)
            before = len(recording.inputs)
            applied = enhancer.enhance(candidate).sr_applied
            assert applied == (len(recording.inputs) > before)
            if applied:
                restored += 1
                assert recording.inputs[-1] >= capture_size(candidate.detection.landmarks)
            else:
                passed += 1
                assert capture_size(candidate.detection.landmarks) > recording.lr_size
    assert restored >= 6 and passed >= 12
    assert SREnhancer(resolver, max_capture_px=20).wants(_candidate(9.5)) is False  # a lower limit holds
    with pytest.raises(ConfigError, match="max_capture_px"):
        SREnhancer(resolver, max_capture_px=40)


def test_fusion_mask_is_soft_and_leaves_the_context_alone_far_from_the_face():
    mask = face_mask()
    assert mask.max() == pytest.approx(1.0, abs=0.02) and mask.min() == 0.0
    assert ((mask > 0.05) & (mask < 0.95)).sum() > 500  # a wide soft band, no hard edge
    assert max(np.abs(np.diff(mask, axis=0)).max(), np.abs(np.diff(mask, axis=1)).max()) < 0.1
    assert mask[0].max() == mask[-1].max() == mask[:, 0].max() == mask[:, -1].max() == 0.0

    candidate = _candidate(10.0)
    restored = np.full((112, 112, 3), 255, np.uint8)  # maximally different from the context
    zoom = 3.0
    fused = fuse(candidate.context, candidate.context_origin, candidate.detection.landmarks, restored, zoom)
    height, width = candidate.context.shape[:2]
    upscaled = cv2.resize(candidate.context, (round(width * zoom), round(height * zoom)),
                          interpolation=cv2.INTER_CUBIC)
    assert fused.shape == upscaled.shape
    corner = slice(0, 8)
    assert np.array_equal(fused[corner, corner], upscaled[corner, corner])
    changed = np.abs(fused.astype(int) - upscaled.astype(int)).max(axis=2)
    assert changed.max() > 100  # the face went in
    # No seam: along any row through the face the change ramps up over several pixels.
    row = changed[changed.shape[0] // 2]
    assert np.abs(np.diff(row)).max() < 60


def test_enhance_overrides_and_a_disabled_enhancer_passes_through():
    from faceedge.edge.config import load_config
    from faceedge.edge.enhance import PassThrough, make_enhancer
    from faceedge.edge.errors import ConfigError

    config = load_config(overrides=["enhance.max_capture_px=24", "enhance.enabled=false"])
    assert config.enhance.max_capture_px == 24.0
    assert isinstance(make_enhancer(config.enhance), PassThrough)
    with pytest.raises(ConfigError):
        load_config(overrides=["enhance.iod_threshold=18"])


def test_shipped_model_is_small_and_restores():
    from faceedge.edge.model_files import resolve_model

    assert resolve_model("weights:sr.onnx").stat().st_size <= 5 * 2**20
    shipped = SuperResolver()
    assert shipped.scale == 4 and shipped.lr_size == 28 and shipped.name == "sr:3"
    face = _face_image()
    restored = shipped.restore(shipped.lowres(face))
    assert restored.shape == (1, 112, 112, 3) and restored.dtype == np.uint8
    # It restores towards the picture, not away from it: closer than a flat grey face.
    assert np.abs(restored[0].astype(int) - face).mean() < np.abs(128 - face.astype(int)).mean()


@pytest.mark.slow
def test_eval_sr_says_which_split_it_scores_and_can_score_every_folder(tmp_path):
    import json
    from pathlib import Path

    from faceedge.edge.cli import main
    from faceedge.edge.identity_split import HOLDOUT_FRACTION, split_identities
    from faceedge.pipelines.dataset import identity_folders

    data = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "identities"
    if not data.is_dir():
        pytest.skip(f"shared face data not found at {data}")
    names = [folder.name for folder in identity_folders(data)]
    _, held_out = split_identities(names, HOLDOUT_FRACTION)
    for split, expected in (("test", held_out), ("all", names)):
        out = tmp_path / f"{split}.json"
        assert main(["eval", "sr", "--data", str(data), "--json", str(out), "--split", split]) == 0
        report = json.loads(out.read_text())
        assert report["split"] == split and report["identities"] == expected
        assert report["probes"] > 0
