"""Stand-in models for measuring the acceleration path before the trained models land.

Small torch CNNs with the trained models' interfaces - a scorer (N,3,112,112) -> (N,1)
and a x4 super-resolver (N,3,32,32) -> (N,3,128,128) - exported to ONNX with a dynamic
batch axis. The scorer is fitted for a few seconds to a sharpness target (log Laplacian
variance) so that its scores rank crops the way a quality model does; the benchmark says
plainly when it measured one. Never shipped as a model.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def _scorer():
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(block(3, 24), block(24, 48), block(48, 96), block(96, 160),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(160, 1))


def _upscaler():
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 48, 3, 1, 1), nn.ReLU(), nn.Conv2d(48, 48, 3, 1, 1), nn.ReLU(),
                         nn.Conv2d(48, 48, 3, 1, 1), nn.ReLU(), nn.Conv2d(48, 3 * 16, 3, 1, 1), nn.PixelShuffle(4))


def sharpness_target(crops: list[np.ndarray]) -> np.ndarray:
    return np.array([np.log1p(cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())
                     for c in crops], dtype=np.float32)


def export(module, example, path: Path) -> Path:
    import torch

    module.eval()
    torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False)
    return path


def scorer_onnx(path: Path, crops: list[np.ndarray] | None = None, steps: int = 150, seed: int = 0) -> Path:
    """Export the stand-in scorer, fitted to sharpness on `crops` (BGR 112x112) when given."""
    import torch

    from faceedge.edge.face_input import SELECTION_INPUT as face_input

    torch.manual_seed(seed)
    model = _scorer()
    if crops:
        x = torch.from_numpy(face_input(crops))
        y = torch.from_numpy(sharpness_target(crops))
        y = (y - y.mean()) / y.std().clamp(min=1e-6)
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(steps):
            idx = torch.randint(0, len(x), (32,), generator=gen)
            loss = torch.nn.functional.mse_loss(model(x[idx]).squeeze(1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return export(model, torch.zeros(1, 3, face_input.size, face_input.size), path)


def upscaler_onnx(path: Path, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    return export(_upscaler(), torch.zeros(1, 3, 32, 32), path)


# A spec's `standin` -> export(path, fit crops or None, seed) of that stand-in; the upscaler is neither fitted
# nor reseeded.
STANDINS = {
    "scorer": lambda path, crops, seed: scorer_onnx(path, crops, seed=seed),
    "upscaler": lambda path, crops, seed: upscaler_onnx(path),
}
