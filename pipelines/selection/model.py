"""The selection CNN and the symmetric cross-entropy loss of recognition-aware selection."""

from __future__ import annotations

import torch
from torch import nn

# Recognition-aware selection: q is floored at 1e-4 so that log q (reverse cross-entropy) stays finite.
LABEL_FLOOR = 1e-4
# Keeps log p finite in the forward cross-entropy for saturated predictions.
PROB_FLOOR = 1e-7


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SelectionNet(nn.Module):
    """64x64 face -> one logit (probability = sigmoid). About 0.2 M parameters, ~10 M multiply-adds."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(3, w, 2),                          # 32x32
            _conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 1),        # 16x16
            _conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w, 1),    # 8x8
            _conv(4 * w, 6 * w, 2), _conv(6 * w, 6 * w, 1),    # 4x4
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(6 * w, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


def symmetric_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 1.0,
                            beta: float = 1.0) -> torch.Tensor:
    """alpha * CE(q, p) + beta * RCE(p, q), averaged over the batch, two classes.

    p = (1 - sigmoid(z), sigmoid(z)) is the prediction, q the one-hot label. CE = -sum q log p;
    RCE = -sum p log q with q floored at 1e-4 (log 0 -> log 1e-4 = -9.21), as the patent describes.
    """
    positive = torch.sigmoid(logits)
    p = torch.stack([1.0 - positive, positive], dim=1).clamp(min=PROB_FLOOR, max=1.0)
    q = torch.stack([1.0 - labels.float(), labels.float()], dim=1)
    ce = -(q * torch.log(p)).sum(dim=1)
    rce = -(p * torch.log(q.clamp(min=LABEL_FLOOR, max=1.0))).sum(dim=1)
    return (alpha * ce + beta * rce).mean()


def similarity_regression(logits: torch.Tensor, genuine_similarity: torch.Tensor, threshold: float,
                          scale: float) -> torch.Tensor:
    """Mean squared distance of each logit from scale * (genuine similarity - threshold).

    Our addition to the patent's loss: SCE alone drives every positive towards the same saturated
    logit, so the score cannot say which of a track's good faces the recogniser matches best. This
    term ties the logit to SFace's similarity to the face's own identity (0 at the label threshold,
    so it agrees with the label on which side of 0.5 most faces fall).
    """
    target = scale * (genuine_similarity - threshold)
    return ((logits - target) ** 2).mean()


def within_track_ranking(logits: torch.Tensor, genuine_similarity: torch.Tensor, group_size: int,
                         temperature: float, scale: float) -> torch.Tensor:
    """Listwise cross-entropy within each consecutive group of `group_size` faces of one person (a track).

    A track publishes its top-scored face, so what counts is the order of one person's faces, which the
    per-face losses only learn indirectly. The target is softmax(genuine similarity / temperature) over the
    group, the prediction softmax(logit / (scale * temperature)): the same units as similarity_regression's
    pull, so the two agree on a face's logit.
    """
    target = torch.softmax(genuine_similarity.view(-1, group_size) / temperature, dim=1)
    predicted = torch.log_softmax(logits.view(-1, group_size) / (scale * temperature), dim=1)
    return -(target * predicted).sum(dim=1).mean()
