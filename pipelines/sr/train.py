"""SR training: teacher with the joint loss, optional pruning, student with distillation.

Per step: the generator minimises 1*L1 + 1e-4*L_GAN (restoration generator) + lambda*(1 - cos)
through the differentiable SFace (identity-preserving SR, on a sub-batch: it costs ~10x the
generator), plus the distillation term for a pruned student (enhancement refinements); the
discriminator is updated on the same batch. After every epoch the enhancement refinements'
augmentation factor, from the discriminator's mean outputs on degraded, real and restored faces,
moves the degradation severity.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from .data import PairSampler, to_tensor
from .losses import (LossWeights, discriminator_loss, distillation_loss, generator_gan_loss, identity_loss,
                     joint_loss)
from .models import Discriminator, Generator
from .pruning import prune_generator, psnr

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    scale: int = 4
    channels: int = 32
    blocks: int = 4
    epochs: int = 10
    steps_per_epoch: int = 50
    batch: int = 16
    lr: float = 1e-3
    weights: LossWeights = field(default_factory=LossWeights)
    identity_batch: int = 4  # faces per step that go through SFace
    identity_every: int = 2  # SFace costs ~10x the generator: identity term on every k-th step
    adaptive: bool = True
    severity: float = 1.0  # starting severity (the only one when adaptive is off)
    prune_ratio: float = 0.0
    max_psnr_drop: float = 0.3
    student_epochs: int = 4
    seed: int = 0


def augmentation_factor(d_degraded: float, d_real: float, d_restored: float, min_gap: float = 0.05) -> float:
    """How much of the real-vs-degraded gap the discriminator sees restored faces close (0..1);
    NaN while the discriminator cannot yet tell real from degraded (no evidence either way)."""
    gap = d_real - d_degraded
    if gap < min_gap:
        return float("nan")
    return float(np.clip((d_restored - d_degraded) / gap, 0.0, 1.0))


def next_severity(severity: float, factor: float, low: float = 0.25, high: float = 0.6, step: float = 0.1,
                  floor: float = 0.3) -> float:
    """Harder data once the generator fools the discriminator, easier while it cannot."""
    if np.isnan(factor):
        return severity
    if factor > high:
        return min(1.0, severity + step)
    if factor < low:
        return max(floor, severity - step)
    return severity


class Trainer:
    def __init__(self, config: TrainConfig, sampler: PairSampler, recognizer=None):
        self.config, self.sampler, self.recognizer = config, sampler, recognizer
        torch.manual_seed(config.seed)
        self.disc = Discriminator()
        self.history: list[dict] = []
        self.sampler.severity = config.severity
        # Fixed check pairs from the training identities at full severity: pruning's quality check.
        check = PairSampler(sampler.sources, sampler.scale, 1.0, seed=config.seed + 1000)
        low, high = check.batch(32)
        self.check_low, self.check_high = to_tensor(low), to_tensor(high)

    def _step(self, gen, opt_g, opt_d, teacher=None, with_identity: bool = True) -> dict[str, float]:
        cfg = self.config
        low, high = (to_tensor(a) for a in self.sampler.batch(cfg.batch))
        restored, feats = gen.forward_with_features(low)
        # Discriminator: real faces vs restored ones.
        opt_d.zero_grad()
        d_loss = discriminator_loss(self.disc(high), self.disc(restored.detach()))
        d_loss.backward()
        opt_d.step()
        # Generator: joint loss.
        terms = {"l1": F.l1_loss(restored, high), "gan": generator_gan_loss(self.disc(restored))}
        if self.recognizer is not None and cfg.weights.identity > 0 and with_identity:
            n = cfg.identity_batch
            terms["identity"] = identity_loss(self.recognizer.embed_bgr01, restored[:n], high[:n])
        if teacher is not None:
            with torch.no_grad():
                t_out, t_feats = teacher.forward_with_features(low)
            terms["distill"] = distillation_loss(feats, t_feats, restored, t_out)
        total = joint_loss(terms, cfg.weights)
        opt_g.zero_grad()
        total.backward()
        opt_g.step()
        return {"total": total.item(), "d": d_loss.item(), **{k: v.item() for k, v in terms.items()}}

    @torch.no_grad()
    def _factor(self, gen) -> dict[str, float]:
        low, high = (to_tensor(a) for a in self.sampler.batch(32))
        degraded = F.interpolate(low, scale_factor=gen.scale, mode="bicubic", align_corners=False)
        means = [torch.sigmoid(self.disc(x)).mean().item() for x in (degraded, high, gen(low))]
        return {"d_degraded": means[0], "d_real": means[1], "d_restored": means[2],
                "factor": augmentation_factor(*means)}

    def fit(self, gen: Generator, epochs: int, stage: str, teacher: Generator | None = None) -> Generator:
        cfg = self.config
        opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr)
        opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr * 0.2, betas=(0.5, 0.999))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, epochs * cfg.steps_per_epoch)
        for epoch in range(epochs):
            gen.train()
            started, sums = time.perf_counter(), {}
            bar = tqdm(range(cfg.steps_per_epoch), desc=f"{stage} {epoch + 1}/{epochs}", leave=False)
            counts = {}
            for step in bar:
                for key, value in self._step(gen, opt_g, opt_d, teacher, step % cfg.identity_every == 0).items():
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
                sched.step()
                bar.set_postfix(l1=f"{sums['l1'] / (bar.n + 1):.4f}")
            gen.eval()
            record = {"stage": stage, "epoch": epoch + 1, "severity": self.sampler.severity,
                      "seconds": time.perf_counter() - started,
                      **{k: v / counts[k] for k, v in sums.items()}, **self._factor(gen)}
            with torch.no_grad():
                record["check_psnr"] = psnr(gen(self.check_low), self.check_high)
            if cfg.adaptive:
                self.sampler.severity = next_severity(self.sampler.severity, record["factor"])
            self.history.append(record)
            log.info("%s", {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
        return gen

    def run(self, out: Path, teacher: Generator | None = None, init: Generator | None = None) -> dict:
        """Train a teacher (from scratch, or on from `init`; skipped when `teacher` is given),
        then prune and fine-tune a student if asked."""
        cfg = self.config
        out.mkdir(parents=True, exist_ok=True)
        if teacher is None:
            teacher = init if init is not None else Generator(cfg.scale, cfg.channels, cfg.blocks)
            self.fit(teacher, cfg.epochs, "teacher")
        save_generator(teacher, out / "teacher.pt")
        result = {"teacher": str(out / "teacher.pt")}
        final = teacher
        if cfg.prune_ratio > 0:
            student, report = prune_generator(teacher, cfg.prune_ratio, self.check_low, self.check_high,
                                              cfg.max_psnr_drop)
            result["pruning"] = [asdict(layer) for layer in report]
            if self.history:
                self.sampler.severity = self.history[-1]["severity"]
            # The student copies the teacher only when distillation has a weight (the enhancement refinements' term).
            self.fit(student, cfg.student_epochs, "student", teacher if cfg.weights.distill > 0 else None)
            save_generator(student, out / "student.pt")
            result["student"] = str(out / "student.pt")
            final = student
        result["history"] = self.history
        result["config"] = {**asdict(cfg)}
        (out / "history.json").write_text(json.dumps(result, indent=1))
        self.final = final
        return result


def save_generator(gen: Generator, path: Path) -> None:
    torch.save({"config": gen.config, "state": gen.state_dict()}, path)


def load_generator(path: Path) -> Generator:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    gen = Generator(**{k: v for k, v in checkpoint["config"].items() if k != "blocks"})
    gen.load_state_dict(checkpoint["state"])
    return gen.eval()
