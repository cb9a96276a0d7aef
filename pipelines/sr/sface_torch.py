"""The shipped SFace recogniser as a differentiable, frozen torch module.

`prepare_onnx("bundled:sface")` folds the int8 weights to float; this module maps that
chain graph (Sub/Mul normalisation, Conv-BN-PReLU blocks, BN, Dropout, Flatten, Gemm, BN)
layer by layer onto torch modules, so the identity loss can back-propagate through it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from faceedge.edge.model_files import load_onnx, prepare_onnx


class _Affine(nn.Module):
    """(x - shift) * scale, the graph's input normalisation."""

    def __init__(self, shift: float, scale: float):
        super().__init__()
        self.shift, self.scale = shift, scale

    def forward(self, x):
        return (x - self.shift) * self.scale


def _layers_from_onnx(model) -> list[nn.Module]:
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # weight reshapes and constants are folded here, not layers
        if node.op_type == "Reshape" and node.input[0] in consts and node.input[1] in consts:
            consts[node.output[0]] = consts[node.input[0]].reshape(consts[node.input[1]])
        elif node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(consts[name], dtype=np.float32))

    layers, current = [], graph.input[0].name
    shift = None
    for node in graph.node:
        if node.output[0] in consts:
            continue
        if node.input[0] != current:
            raise ValueError(f"SFace graph is not a chain at node {node.name or node.op_type}")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op == "Sub":
            shift = float(consts[node.input[1]].reshape(-1)[0])
        elif op == "Mul":
            layers.append(_Affine(shift, float(consts[node.input[1]].reshape(-1)[0])))
        elif op == "Conv":
            weight = tensor(node.input[1])
            conv = nn.Conv2d(weight.shape[1] * attrs.get("group", 1), weight.shape[0], tuple(attrs["kernel_shape"]),
                             stride=tuple(attrs.get("strides", [1, 1])), padding=tuple(attrs.get("pads", [0] * 4)[:2]),
                             groups=attrs.get("group", 1), bias=len(node.input) > 2)
            conv.weight.data.copy_(weight)
            if conv.bias is not None:
                conv.bias.data.copy_(tensor(node.input[2]))
            layers.append(conv)
        elif op == "BatchNormalization":
            gamma = tensor(node.input[1])
            norm = (nn.BatchNorm2d if layers and not isinstance(layers[-1], nn.Linear) else nn.BatchNorm1d)(
                gamma.numel(), eps=attrs.get("epsilon", 1e-5))
            norm.weight.data.copy_(gamma)
            norm.bias.data.copy_(tensor(node.input[2]))
            norm.running_mean.copy_(tensor(node.input[3]))
            norm.running_var.copy_(tensor(node.input[4]))
            layers.append(norm)
        elif op == "PRelu":
            slope = tensor(node.input[1]).reshape(-1)
            prelu = nn.PReLU(slope.numel())
            prelu.weight.data.copy_(slope)
            layers.append(prelu)
        elif op == "Dropout":
            pass  # inference graph: identity
        elif op == "Flatten":
            layers.append(nn.Flatten(attrs.get("axis", 1)))
        elif op == "Gemm":
            weight = tensor(node.input[1])
            if not attrs.get("transB", 0):
                weight = weight.t()
            linear = nn.Linear(weight.shape[1], weight.shape[0])
            linear.weight.data.copy_(weight * attrs.get("alpha", 1.0))
            linear.bias.data.copy_(tensor(node.input[2]) * attrs.get("beta", 1.0))
            layers.append(linear)
        else:
            raise ValueError(f"SFace graph: unsupported op {op}")
        current = node.output[0]
    return layers


class SFaceTorch(nn.Module):
    """Frozen SFace. `forward` takes the ONNX input (N,3,112,112 RGB 0..255) and returns raw
    128-d features; `embed_bgr01` takes BGR in 0..1 (the generator's layout) and L2-normalises."""

    def __init__(self, model: str = "bundled:sface"):
        super().__init__()
        self.net = nn.Sequential(*_layers_from_onnx(load_onnx(prepare_onnx(model))))
        self.eval()
        for param in self.parameters():
            param.requires_grad_(False)

    def train(self, mode: bool = True):  # batch-norm statistics stay those of the shipped model
        return super().train(False)

    def forward(self, rgb255: torch.Tensor) -> torch.Tensor:
        return self.net(rgb255)

    def embed_bgr01(self, bgr01: torch.Tensor) -> torch.Tensor:
        feats = self.net(bgr01.flip(1) * 255.0)
        return nn.functional.normalize(feats, dim=1)
