"""The quality classifier: a compact ResNet over the 3-panel input, six levels out.

The GAN-graded quality method names a ResNet trained with "binary cross-entropy and softmax"; `level_loss`
implements exactly that: softmax over the six levels, then binary cross-entropy of each
level's probability against the one-hot target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from faceedge.edge.quality_io import LEVELS, PANEL_SIZE

STEM_CHANNELS = 24
STAGES = ((24, 1), (48, 2), (96, 2), (128, 2))  # (channels, stride) of one basic block each


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class QualityResNet(nn.Module):
    """N x 3 x 64 x 192 three-panel faces -> N x 6 level logits (index 0 = level I, best)."""

    def __init__(self, levels: int = len(LEVELS)):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False), nn.BatchNorm2d(STEM_CHANNELS), nn.ReLU(inplace=True)
        )
        blocks, channels = [], STEM_CHANNELS
        for out_channels, stride in STAGES:
            blocks.append(BasicBlock(channels, out_channels, stride))
            channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(x))
        return self.head(features.mean(dim=(2, 3)))


class ScoringHead(nn.Module):
    """What the ONNX file computes: the classifier plus softmax and the expected-level score."""

    def __init__(self, classifier: QualityResNet):
        super().__init__()
        self.classifier = classifier
        levels = classifier.head.out_features
        self.register_buffer("level_index", torch.arange(levels, dtype=torch.float32))
        self.last_index = float(levels - 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.classifier(x), dim=1)
        score = 1.0 - (probabilities * self.level_index).sum(dim=1) / self.last_index
        return score, probabilities


def level_loss(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Softmax, then binary cross-entropy per level against the one-hot target (as the patent says)."""
    probabilities = torch.softmax(logits, dim=1).clamp(1e-6, 1 - 1e-6)
    target = F.one_hot(levels, logits.shape[1]).float()
    return F.binary_cross_entropy(probabilities, target)


def export_onnx(classifier: QualityResNet, path: Path, opset: int = 17) -> None:
    """Write `score` (N) and `probabilities` (N x 6) for input `faces` (N x 3 x 64 x 192), dynamic N."""
    head = ScoringHead(classifier).eval()
    example = torch.zeros(1, 3, PANEL_SIZE, 3 * PANEL_SIZE)
    torch.onnx.export(
        head,
        (example,),
        str(path),
        input_names=["faces"],
        output_names=["score", "probabilities"],
        dynamic_axes={"faces": {0: "batch"}, "score": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )


def onnx_parity(classifier: QualityResNet, path: Path, blob: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime probabilities on `blob`."""
    import onnxruntime as ort

    head = ScoringHead(classifier).eval()
    with torch.no_grad():
        score, probabilities = head(torch.from_numpy(blob))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_score, onnx_probabilities = session.run(["score", "probabilities"], {"faces": blob})
    return float(max(np.abs(onnx_probabilities - probabilities.numpy()).max(), np.abs(onnx_score - score.numpy()).max()))
