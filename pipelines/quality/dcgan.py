"""The generative adversarial network of the GAN-graded quality method (CN112700408A, figures 3 and 4), in torch.nn.

Generator: noise -> linear map to a 1 x 3 x 2H x 2W tensor -> seven 3x3 convolutions with
50, 25, 16 (stride 2), 16, 16, 8 and 3 output channels, padding 1, each followed by
BatchNorm and ReLU ("对以上每一层网络的输出均添加批标准化层和ReLU激活函数层"), so a
sample is 3 x H x W and non-negative: images are fed to both networks in [0, 1].
The patent's input, "20维长度为3*H*2*W*2的随机噪声", is read as a 20-dimensional noise vector
that the linear layer maps to 3*2H*2W values.

Discriminator: conv 32 7x7 (pad 3), conv 32 3x3, conv 16 3x3 (pad 1), each followed by
LeakyReLU and 2x2 average pooling with stride 2; then FC 1024 + LeakyReLU, FC 1 + sigmoid.

Training (`train_step`) is the patent's two-phase iteration with binary cross-entropy:
phase 1 updates only the discriminator on real (label 1) and generated (label 0) images;
phase 2 updates only the generator on a fresh generated batch labelled 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

NOISE_DIM = 20
# (output channels, stride) of the generator convolutions, in the patent's order.
GENERATOR_CONVS = ((50, 1), (25, 1), (16, 2), (16, 1), (16, 1), (8, 1), (3, 1))
# (output channels, kernel) of the discriminator convolutions.
DISCRIMINATOR_CONVS = ((32, 7), (32, 3), (16, 3))
DISCRIMINATOR_HIDDEN = 1024
LEAKY_SLOPE = 0.2


class Generator(nn.Module):
    def __init__(self, height: int, width: int, noise_dim: int = NOISE_DIM):
        super().__init__()
        self.height, self.width, self.noise_dim = height, width, noise_dim
        self.project = nn.Linear(noise_dim, 3 * 2 * height * 2 * width)
        layers: list[nn.Module] = []
        channels = 3
        for out_channels, stride in GENERATOR_CONVS:
            layers += [
                nn.Conv2d(channels, out_channels, 3, stride=stride, padding=1),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            channels = out_channels
        self.convs = nn.Sequential(*layers)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        grid = self.project(noise).view(-1, 3, 2 * self.height, 2 * self.width)
        return self.convs(grid)

    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(count, self.noise_dim, generator=generator)
        return self(noise)


class Discriminator(nn.Module):
    def __init__(self, height: int, width: int):
        super().__init__()
        if height % 8 or width % 8:
            raise ValueError(f"discriminator input {height}x{width} must be divisible by 8 (three 2x2 poolings)")
        layers: list[nn.Module] = []
        channels = 3
        for out_channels, kernel in DISCRIMINATOR_CONVS:
            layers += [
                nn.Conv2d(channels, out_channels, kernel, stride=1, padding=kernel // 2),
                nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
                nn.AvgPool2d(2, stride=2),
            ]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classify = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * (height // 8) * (width // 8), DISCRIMINATOR_HIDDEN),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Linear(DISCRIMINATOR_HIDDEN, 1),
            nn.Sigmoid(),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(images)).squeeze(1)


@dataclass
class GAN:
    generator: Generator
    discriminator: Discriminator
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer

    @classmethod
    def create(cls, height: int, width: int, lr: float = 2e-4) -> "GAN":
        generator, discriminator = Generator(height, width), Discriminator(height, width)
        # Adam with beta1 = 0.5: the usual DCGAN setting (the patent names no optimiser).
        return cls(
            generator,
            discriminator,
            torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999)),
            torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999)),
        )

    def train_step(self, real: torch.Tensor) -> tuple[float, float]:
        """One two-phase iteration on a batch of real images in [0, 1]; returns (d_loss, g_loss)."""
        batch = real.shape[0]
        self.generator.train()
        self.discriminator.train()

        # Phase 1: discriminator only; the generated batch is detached so G gets no gradient.
        fake = self.generator.sample(batch).detach()
        scores = self.discriminator(torch.cat([real, fake]))
        labels = torch.cat([torch.ones(batch), torch.zeros(batch)])
        d_loss = F.binary_cross_entropy(scores, labels)
        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_optimizer.step()

        # Phase 2: generator only, on a fresh batch with every image labelled real; D's weights are frozen.
        self.discriminator.requires_grad_(False)
        scores = self.discriminator(self.generator.sample(batch))
        g_loss = F.binary_cross_entropy(scores, torch.ones(batch))
        self.g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_optimizer.step()
        self.discriminator.requires_grad_(True)
        return d_loss.item(), g_loss.item()

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.g_optimizer.load_state_dict(state["g_optimizer"])
        self.d_optimizer.load_state_dict(state["d_optimizer"])
