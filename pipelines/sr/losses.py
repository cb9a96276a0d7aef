"""Loss terms: the restoration generator's joint L1 + GAN loss, identity-preserving SR's identity term,
the enhancement refinements' distillation.

The discriminator returns logits; D(.) in the patent's formula is sigmoid(logit), so
-log D(G(x)) is softplus(-logit), computed stably.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

# The restoration generator: k1 = 1, k2 = 1e-4 gave the best, most stable generator.
L1_WEIGHT = 1.0
GAN_WEIGHT = 1e-4


def generator_gan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean log D(G(I_s)) (the restoration generator, formula 1, averaged over the batch)."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Real faces judged real, restored faces judged fake."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def identity_loss(embed, restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Identity-preserving SR: 1 - cosine between recogniser embeddings of the output and the HR face."""
    with torch.no_grad():
        reference = embed(target)
    return (1.0 - (embed(restored) * reference).sum(dim=1)).mean()


def distillation_loss(student_feats, teacher_feats, student_out, teacher_out) -> torch.Tensor:
    """Enhancement refinements: the pruned student copies the full teacher's features and output."""
    return F.l1_loss(student_feats, teacher_feats) + F.l1_loss(student_out, teacher_out)


@dataclass
class LossWeights:
    l1: float = L1_WEIGHT
    gan: float = GAN_WEIGHT
    identity: float = 0.1
    distill: float = 0.0


def joint_loss(terms: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    """Weighted sum of the terms present (a term left out costs nothing to compute)."""
    return sum(getattr(weights, name) * value for name, value in terms.items())
