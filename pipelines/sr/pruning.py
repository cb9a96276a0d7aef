"""The enhancement refinements' per-layer channel pruning with a back-off driven by a quality check.

Each residual block's inner width is cut by `ratio`, keeping the filters with the largest
L1 norm. If the generator's output with that cut fails the quality check (PSNR to the
high-resolution faces falls more than `max_psnr_drop` dB below the unpruned model's),
the ratio for that layer is halved and tried again, down to zero (layer left whole).
Layers are pruned one after another, each checked on top of the cuts already kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .models import Generator, ResidualBlock


@dataclass
class LayerPruning:
    layer: str
    requested: float
    applied: float
    channels_before: int
    channels_after: int
    psnr: float


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    mse = torch.mean((output.clamp(0, 1) - target) ** 2).item()
    return 10.0 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item()


def prune_block(block: ResidualBlock, ratio: float) -> int:
    """Remove `ratio` of the block's inner channels in place; returns the channels kept."""
    width = block.conv1.out_channels
    keep_count = max(1, width - int(round(width * ratio)))
    norms = block.conv1.weight.detach().abs().sum(dim=(1, 2, 3))
    keep = torch.sort(torch.topk(norms, keep_count).indices).values
    conv1, conv2 = block.conv1, block.conv2
    new1 = torch.nn.Conv2d(conv1.in_channels, keep_count, 3, padding=1)
    new1.weight.data.copy_(conv1.weight.data[keep])
    new1.bias.data.copy_(conv1.bias.data[keep])
    new2 = torch.nn.Conv2d(keep_count, conv2.out_channels, 3, padding=1)
    new2.weight.data.copy_(conv2.weight.data[:, keep])
    new2.bias.data.copy_(conv2.bias.data)
    block.conv1, block.conv2 = new1, new2
    return keep_count


def _sync_config(model: Generator) -> None:
    model.config["inner"] = [block.conv1.out_channels for block in model.body]


@torch.no_grad()
def prune_generator(model: Generator, ratio: float, lowres: torch.Tensor, highres: torch.Tensor,
                    max_psnr_drop: float = 0.3, min_ratio: float = 0.05) -> tuple[Generator, list[LayerPruning]]:
    """A pruned copy of `model` and, per layer, the ratio asked for and the ratio kept."""
    model = copy.deepcopy(model).eval()
    floor = psnr(model(lowres), highres) - max_psnr_drop
    report = []
    for index in range(len(model.body)):
        before = model.body[index].conv1.out_channels
        tried = ratio
        while tried >= min_ratio:
            candidate = copy.deepcopy(model)
            prune_block(candidate.body[index], tried)
            score = psnr(candidate(lowres), highres)
            if score >= floor:
                model = candidate
                break
            tried /= 2
        after = model.body[index].conv1.out_channels
        report.append(LayerPruning(f"body.{index}", ratio, 1 - after / before, before, after,
                                   psnr(model(lowres), highres)))
    _sync_config(model)
    return model, report
