"""GAN-graded quality training end to end, in resumable stages under one output folder.

1. faces:      detect, align (112x112) and keep frontal faces of the training identities.
2. gan:        train the patent's DCGAN on them, saving a generated set at evenly spaced checkpoints.
3. grading:    grade every generated sample by the three rules (iteration, Fréchet, MSE).
4. pool:       real faces (level I) + graded generated faces + degraded real faces graded by strength.
5. classifier: the 3-panel ResNet, checkpointed every epoch.
6. export:     ONNX (dynamic batch) checked against torch, then held-out evaluation.

Each stage writes its result to `out/`; a rerun skips finished stages and continues an
interrupted one from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.stats import spearmanr
from tqdm import tqdm

from faceedge.edge.align import ALIGNED_SIZE
from faceedge.edge.identity_split import HOLDOUT_FRACTION
from faceedge.edge.quality_io import LEVELS, quality_blob, score_from_probabilities, softmax
from faceedge.pipelines.dataset import build_dataset, split_folders
from faceedge.pipelines.degrade import Degradation

from . import grading
from .dcgan import GAN
from .model import QualityResNet, export_onnx, level_loss, onnx_parity

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str
    out: str
    seed: int = 0
    holdout_fraction: float = HOLDOUT_FRACTION
    gan_size: int = 32  # generated images are gan_size^2; the generator's linear map is 2x that
    gan_iterations: int = 600
    gan_checkpoints: int = 10
    gan_samples: int = 48  # per checkpoint
    gan_batch: int = 16
    grading: str = "iteration"  # which rule labels the generated faces for training
    sources: str = "gan,degraded"
    degraded_per_face: int = 40
    heldout_degraded_per_face: int = 20
    epochs: int = 6
    batch: int = 32
    lr: float = 2e-3
    threads: int = 1


def _save_json(path: Path, payload) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def load_faces(cfg: TrainConfig, out: Path) -> dict[str, np.ndarray]:
    """Aligned frontal faces split by identity; cached in out/faces.npz."""
    cache = out / "faces.npz"
    if cache.is_file():
        return dict(np.load(cache))
    from faceedge.edge.detect import YuNetDetector

    train_ids, heldout_ids = split_folders(cfg.data, cfg.holdout_fraction)
    detector = YuNetDetector()
    faces = {}
    for split, ids in (("train", train_ids), ("heldout", heldout_ids)):
        records = build_dataset(cfg.data, detector, ALIGNED_SIZE, identities=ids)
        faces[split] = np.stack([r.aligned for r in records]) if records else np.zeros((0, 112, 112, 3), np.uint8)
        faces[f"{split}_identity"] = np.array([r.identity for r in records])
    if len(faces["train"]) < 2:
        raise ValueError(f"{cfg.data}: fewer than two usable faces in the training identities")
    np.savez_compressed(cache, **faces)
    return faces


def _to_gan_tensor(faces: np.ndarray, size: int) -> torch.Tensor:
    small = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in faces])
    return torch.from_numpy(small.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)


def _to_uint8_faces(generated: torch.Tensor) -> np.ndarray:
    """Generator output (N x 3 x h x w, >= 0) -> N x 112 x 112 x 3 uint8, upscaled like a small face would be."""
    small = (generated.clamp(0, 1).numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
    return np.stack([cv2.resize(f, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_LINEAR) for f in small])


def train_gan(cfg: TrainConfig, real: np.ndarray, out: Path) -> dict[str, np.ndarray]:
    """Seed step 102: generated sets at `gan_checkpoints` evenly spaced iterations; resumable."""
    result_path, state_path = out / "gan_sets.npz", out / "gan_checkpoint.pt"
    if result_path.is_file():
        return dict(np.load(result_path))
    torch.manual_seed(cfg.seed)
    gan = GAN.create(cfg.gan_size, cfg.gan_size)
    real_tensor = _to_gan_tensor(real, cfg.gan_size)
    sets, iterations, start = [], [], 0
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        gan.load_state_dict(state["gan"])
        torch.set_rng_state(state["rng"])
        sets, iterations, start = state["sets"], state["iterations"], state["iteration"]
        log.info("resuming GAN at iteration %d", start)
    every = cfg.gan_iterations // cfg.gan_checkpoints
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    progress = tqdm(range(start, cfg.gan_iterations), desc="gan", initial=start, total=cfg.gan_iterations)
    for iteration in progress:
        pick = torch.randint(len(real_tensor), (cfg.gan_batch,))
        batch = real_tensor[pick]
        flip = torch.rand(cfg.gan_batch) < 0.5
        batch[flip] = batch[flip].flip(-1)
        d_loss, g_loss = gan.train_step(batch)
        progress.set_postfix(d=f"{d_loss:.3f}", g=f"{g_loss:.3f}")
        done = iteration + 1
        if done % every == 0:
            gan.generator.eval()
            with torch.no_grad():
                sets.append(_to_uint8_faces(gan.generator.sample(cfg.gan_samples, sampler)))
            iterations.append(done)
            torch.save({"gan": gan.state_dict(), "rng": torch.get_rng_state(), "sets": sets,
                        "iterations": iterations, "iteration": done}, state_path)
    result = {
        "faces": np.concatenate(sets),
        "iteration": np.repeat(np.array(iterations), cfg.gan_samples),
    }
    np.savez_compressed(result_path, **result)
    return result


def grade_generated(cfg: TrainConfig, real: np.ndarray, generated: dict, out: Path) -> dict[str, np.ndarray]:
    """Seed step 103: level of every generated face under each rule; written to out/grades.json."""
    path = out / "grades.npz"
    if path.is_file():
        return dict(np.load(path))
    from faceedge.edge.recognize import SFaceRecognizer

    recognizer = SFaceRecognizer(threads=cfg.threads)
    real_features = recognizer.embed(real)
    fake_features = recognizer.embed(generated["faces"])
    iterations = generated["iteration"]
    by_frechet, distances = grading.grade_by_frechet(real_features, fake_features, iterations)
    # MSE at the generator's own resolution, so upscaling adds no error of its own.
    def small(faces):
        return np.stack([cv2.resize(f, (cfg.gan_size,) * 2, interpolation=cv2.INTER_AREA) for f in faces])

    by_mse, errors = grading.grade_by_mse(small(real).astype(np.float32) / 255, small(generated["faces"]).astype(np.float32) / 255)
    grades = {"iteration": grading.grade_by_iteration(iterations), "frechet": by_frechet, "mse": by_mse}
    checkpoints = np.unique(iterations)
    summary = {
        "by_checkpoint": [
            {
                "iteration": int(it),
                "frechet_distance": round(distances[it], 4),
                "mean_mse": round(float(errors[iterations == it].mean()), 5),
                **{f"mean_level_{rule}": round(float(levels[iterations == it].mean()), 3) for rule, levels in grades.items()},
            }
            for it in checkpoints.tolist()
        ],
        "rule_agreement_spearman": {
            f"{a}~{b}": round(float(spearmanr(grades[a], grades[b]).statistic), 3)
            for i, a in enumerate(grading.RULES) for b in grading.RULES[i + 1:]
        },
    }
    _save_json(out / "grades.json", summary)
    np.savez_compressed(path, **grades)
    return grades


def degraded_set(faces: np.ndarray, per_face: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`per_face` degraded copies of every face, severity drawn uniformly so strengths span [0, 1]."""
    images, strengths = [], []
    for face in faces:
        for _ in range(per_face):
            degraded = Degradation(severity=float(rng.uniform(0.05, 1.0)))(face, rng)
            images.append(degraded.image)
            strengths.append(degraded.strength)
    return np.stack(images), np.array(strengths, dtype=np.float32)


def build_pool(cfg: TrainConfig, faces: dict, generated: dict, grades: dict, out: Path) -> dict[str, np.ndarray]:
    path = out / "pool.npz"
    if path.is_file():
        return dict(np.load(path))
    rng = np.random.default_rng(cfg.seed)
    sources = set(cfg.sources.split(","))
    unknown = sources - {"gan", "degraded"}
    if unknown or not sources:
        raise ValueError(f"unknown quality sources {sorted(unknown)}; use gan, degraded or both")
    images, levels, source = [faces["train"]], [np.zeros(len(faces["train"]), np.int64)], [np.full(len(faces["train"]), "real")]
    if "gan" in sources:
        images.append(generated["faces"])
        levels.append(grades[cfg.grading])
        source.append(np.full(len(generated["faces"]), "gan"))
    if "degraded" in sources:
        degraded, strength = degraded_set(faces["train"], cfg.degraded_per_face, rng)
        images.append(degraded)
        levels.append(grading.grade_by_strength(strength))
        source.append(np.full(len(degraded), "degraded"))
    # Its own random stream, so runs with different --sources are evaluated on the same held-out faces.
    heldout, heldout_strength = degraded_set(faces["heldout"], cfg.heldout_degraded_per_face,
                                             np.random.default_rng([cfg.seed, 1]))
    pool = {
        "images": np.concatenate(images), "levels": np.concatenate(levels), "source": np.concatenate(source),
        "heldout_images": np.concatenate([faces["heldout"], heldout]),
        "heldout_strength": np.concatenate([np.zeros(len(faces["heldout"]), np.float32), heldout_strength]),
    }
    np.savez_compressed(path, **pool)
    return pool


def _balanced_order(levels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch of indices drawn with equal total weight per level (real faces are few)."""
    counts = np.bincount(levels, minlength=len(LEVELS)).astype(np.float64)
    weights = 1.0 / counts[levels]
    return rng.choice(len(levels), size=len(levels), p=weights / weights.sum())


def _augment(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quality-neutral jitter: mirror and a shift of a few pixels (reflect border)."""
    if rng.random() < 0.5:
        face = face[:, ::-1]
    dx, dy = rng.integers(-4, 5, size=2)
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(np.ascontiguousarray(face), shift, face.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def train_classifier(cfg: TrainConfig, pool: dict, out: Path) -> tuple[QualityResNet, list[float]]:
    """Seed step 104, checkpointed every epoch; returns the model and the per-epoch mean losses."""
    path = out / "classifier.pt"
    torch.manual_seed(cfg.seed)
    model = QualityResNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    epoch, losses = 0, []
    if path.is_file():
        state = torch.load(path, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, losses = state["epoch"], state["losses"]
        log.info("resuming classifier after epoch %d", epoch)
    images, levels = pool["images"], pool["levels"]
    for epoch in range(epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        order = _balanced_order(levels, rng)
        # Cosine decay per epoch, computed rather than stored, so a resumed run may change --epochs.
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + np.cos(np.pi * epoch / cfg.epochs))
        model.train()
        total = 0.0
        progress = tqdm(range(0, len(order), cfg.batch), desc=f"classifier {epoch + 1}/{cfg.epochs}")
        for start in progress:
            index = order[start:start + cfg.batch]
            blob = quality_blob([_augment(images[i], rng) for i in index])
            loss = level_loss(model(torch.from_numpy(blob)), torch.from_numpy(levels[index]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            progress.set_postfix(loss=f"{loss.item():.4f}")
        losses.append(total / len(order))
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1, "losses": losses}, path)
    return model.eval(), losses


def predict(model: QualityResNet, faces: np.ndarray, batch: int = 64) -> np.ndarray:
    """Level probabilities (N x 6) for BGR uint8 faces."""
    with torch.no_grad():
        logits = [model(torch.from_numpy(quality_blob(faces[i:i + batch]))).numpy() for i in range(0, len(faces), batch)]
    return softmax(np.concatenate(logits))


def evaluate(model: QualityResNet, pool: dict) -> dict:
    """Held-out identities: level accuracy against strength-graded levels, score vs strength rank correlation.

    The Laplacian-variance sharpness the heuristic scorer uses is measured on the same faces, side by side.
    """
    from faceedge.edge.select import laplacian_variance

    faces, strength = pool["heldout_images"], pool["heldout_strength"]
    if len(faces) == 0:
        return {}
    probabilities = predict(model, faces)
    scores = score_from_probabilities(probabilities)
    truth = grading.grade_by_strength(strength)
    predicted = probabilities.argmax(1)
    sharpness = np.array([laplacian_variance(f) for f in faces])
    return {
        "heldout_faces": int(len(faces)),
        "heldout_real_faces": int((strength == 0).sum()),
        "level_accuracy": round(float((predicted == truth).mean()), 4),
        "level_within_one": round(float((np.abs(predicted - truth) <= 1).mean()), 4),
        "spearman_score_vs_strength": round(float(spearmanr(scores, -strength).statistic), 4),
        "spearman_laplacian_vs_strength": round(float(spearmanr(sharpness, -strength).statistic), 4),
    }


# Settings a resumed run may change: they do not alter any cached stage's result.
RESUMABLE_SETTINGS = ("out", "epochs", "threads")


def _refuse_changed_settings(cfg: TrainConfig, saved_path: Path) -> None:
    """Cached stages were made with the saved settings; mixing them with other settings would mislabel the model."""
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text())
    changed = sorted(k for k, v in asdict(cfg).items() if k not in RESUMABLE_SETTINGS and saved.get(k, v) != v)
    if changed:
        raise ValueError(f"{saved_path.parent} was made with other settings ({', '.join(changed)}); "
                         "use a new --out folder or the same settings")


def train(cfg: TrainConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    if cfg.grading not in grading.RULES:
        raise ValueError(f"unknown grading rule {cfg.grading!r}; use one of {grading.RULES}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _refuse_changed_settings(cfg, out / "config.json")
    _save_json(out / "config.json", asdict(cfg))
    faces = load_faces(cfg, out)
    generated = train_gan(cfg, faces["train"], out)
    grades = grade_generated(cfg, faces["train"], generated, out)
    pool = build_pool(cfg, faces, generated, grades, out)
    model, losses = train_classifier(cfg, pool, out)

    onnx_path = out / "quality.onnx"
    export_onnx(model, onnx_path)
    parity = onnx_parity(model, onnx_path, quality_blob(pool["images"][:: max(1, len(pool["images"]) // 16)]))
    if parity > 1e-4:
        raise RuntimeError(f"ONNX export differs from torch by {parity:.2e}")
    report = {
        "train_faces": int(len(faces["train"])),
        "train_identities": sorted(set(faces["train_identity"].tolist())),
        "heldout_identities": sorted(set(faces["heldout_identity"].tolist())),
        "pool_by_source": {s: int((pool["source"] == s).sum()) for s in np.unique(pool["source"])},
        "pool_by_level": {LEVELS[i]: int(c) for i, c in enumerate(np.bincount(pool["levels"], minlength=len(LEVELS)))},
        "epoch_losses": [round(x, 5) for x in losses],
        "onnx_max_abs_diff": parity,
        "onnx_bytes": onnx_path.stat().st_size,
        **evaluate(model, pool),
    }
    _save_json(out / "report.json", report)
    return report
