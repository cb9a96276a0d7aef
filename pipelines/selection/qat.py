"""Quantisation-aware fine-tuning of a trained selection model.

Post-training INT8 (calibration/quantize.py) rounds the weights per output channel to symmetric int8 and each
quantised layer's input activations to uint8 over a calibrated range; the flips of a track's best face come from
that rounding (docs/decisions/011-selection-int8-layout.md). Here the trained net's batch norms are folded into
its convolutions, and it trains a few more epochs with the same rounding simulated where the INT8 copy will have
it (every convolution after the `leading_float` float ones; the head stays in float, as `float_nodes` keeps it),
straight-through in the backward pass. The result is a plain float net: the same calibration then quantises it,
so nothing in the runtime or the INT8 build changes.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .samples import Samples
from .train import TrainSettings, train_model

UINT8 = (0, 255)
INT8_WEIGHTS = (-127, 127)  # symmetric, as ONNX Runtime's per-channel weights


class ActivationRounding(nn.Module):
    """uint8 over a running [min, max] of the activations it has seen (averaged, as a calibrator's range is)."""

    def __init__(self, momentum: float = 0.01):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("low", torch.tensor(float("nan")))
        self.register_buffer("high", torch.tensor(float("nan")))
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if self.training:
            with torch.no_grad():
                low, high = x.min().clamp(max=0.0), x.max().clamp(min=0.0)
                if torch.isnan(self.low):
                    self.low.copy_(low), self.high.copy_(high)
                else:
                    self.low.lerp_(low, self.momentum), self.high.lerp_(high, self.momentum)
        scale = float(max((self.high - self.low).item(), 1e-8)) / (UINT8[1] - UINT8[0])
        zero_point = int(np.clip(round(-self.low.item() / scale), *UINT8))
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, *UINT8)


class RoundedConv(nn.Module):
    """A folded convolution whose weights are rounded per output channel and whose input is rounded to uint8."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv
        self.input_rounding = ActivationRounding()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.input_rounding.enabled:
            return self.conv(x)
        weight = self.conv.weight
        scale = (weight.detach().abs().amax(dim=(1, 2, 3)).clamp(min=1e-8) / INT8_WEIGHTS[1]).float()
        zero_point = torch.zeros(len(scale), dtype=torch.int32)
        rounded = torch.fake_quantize_per_channel_affine(weight, scale, zero_point, 0, *INT8_WEIGHTS)
        return self.conv._conv_forward(self.input_rounding(x), rounded, self.conv.bias)


class QuantAwareSelectionNet(nn.Module):
    """A trained `SelectionNet` with folded batch norms; `simulate(False)` makes it the plain float net again."""

    def __init__(self, net: nn.Module, leading_float: int):
        super().__init__()
        net = copy.deepcopy(net).eval()
        blocks = []
        for index, (conv, batch_norm, relu) in enumerate(net.features):
            folded = fuse_conv_bn_eval(conv, batch_norm)
            blocks.append(nn.Sequential(folded if index < leading_float else RoundedConv(folded), relu))
        self.features = nn.Sequential(*blocks)
        # The last quantised layer's output is rounded too before the float head reads it.
        self.output_rounding = ActivationRounding() if leading_float < len(blocks) else nn.Identity()
        self.head = net.head

    def simulate(self, enabled: bool) -> "QuantAwareSelectionNet":
        for module in self.modules():
            if isinstance(module, ActivationRounding):
                module.enabled = enabled
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.output_rounding(self.features(x))).squeeze(1)


def fine_tune(net: nn.Module, samples: Samples, settings: TrainSettings, epochs: int, lr: float,
              leading_float: int, checkpoint: Path | None = None, progress: bool = True
              ) -> tuple[QuantAwareSelectionNet, list[float]]:
    """`epochs` of quantisation-aware training from the trained `net` (cosine decay from `lr`) by the float
    training's own loop, checkpointed after every epoch (a rerun resumes); returns the float net (simulation off,
    eval mode) and the epoch losses."""
    # Epoch streams of their own: the float training's epochs drew [seed, 0..epochs-1].
    model, history = train_model(samples, replace(settings, epochs=epochs, lr=lr), checkpoint, progress,
                                 initial=QuantAwareSelectionNet(net, leading_float), epoch_stream=1000)
    return model.simulate(False).eval(), history
