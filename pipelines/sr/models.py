"""Edge-sized SR generator with skip connections (the restoration generator) and its discriminator.

Images are BGR in 0..1, NCHW. The generator maps a (112/scale)^2 face to 112x112 as
bicubic(x) + residual: the image-level skip means it only learns the missing detail,
which is what a few dozen training faces can teach. Inside, residual blocks (local skips)
and a long skip around the body; each block's inner width is what pruning cuts. Leaky ReLUs: with plain ReLUs the
small residual path died early in training and the generator stayed exactly bicubic.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

HR_SIZE = 112


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, inner: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, inner, 3, padding=1)
        self.conv2 = nn.Conv2d(inner, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class Generator(nn.Module):
    def __init__(self, scale: int = 4, channels: int = 32, blocks: int = 4, inner: list[int] | None = None):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
        inner = list(inner) if inner is not None else [channels] * blocks
        self.config = {"scale": scale, "channels": channels, "blocks": len(inner), "inner": inner}
        self.scale = scale
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(channels, width) for width in inner])
        self.body_tail = nn.Conv2d(channels, channels, 3, padding=1)
        stages = []
        for _ in range(int(math.log2(scale)) - 1):
            stages += [nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.LeakyReLU(0.2)]
        stages += [nn.Conv2d(channels, 3 * 4, 3, padding=1), nn.PixelShuffle(2)]
        self.upsample = nn.Sequential(*stages)
        # Start close to bicubic (small residual) but not at zero, which would stall the
        # gradient to every earlier layer for the first few hundred steps.
        with torch.no_grad():
            stages[-2].weight.mul_(0.1)
            stages[-2].bias.zero_()

    @property
    def lr_size(self) -> int:
        return HR_SIZE // self.scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Body output after the long skip: what distillation matches between teacher and student."""
        head = self.head(x)
        return head + self.body_tail(self.body(head))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(restored face, body features) from one pass: distillation needs both."""
        feats = self.features(x)
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.upsample(feats), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]


class Discriminator(nn.Module):
    """Strided conv classifier on 112x112 faces; one real/fake logit per image."""

    def __init__(self, width: int = 32):
        super().__init__()
        layers, channels = [], 3
        for out in (width, width * 2, width * 4, width * 4):
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(1, 2, 3))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, lr_size: int) -> int:
    """Multiply-accumulates of the conv layers for one face (bicubic and activations excluded)."""
    total = 0

    def hook(module, _inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() // output.shape[0] * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, lr_size, lr_size))
    for handle in handles:
        handle.remove()
    return total
