"""torch on CUDA, for GPUs without TensorRT.

Decision: this backend runs a real torch module - one passed in by the caller (the
trainers' `nn.Module`s) or a `torch.export` archive saved beside the ONNX as
`<stem>.pt2` - in FP16 with autocast-free `.half()` weights. It does not convert ONNX
graphs to torch (no converter dependency): a model with no torch twin is passed over,
and `auto` falls through to ONNX Runtime, whose CUDA provider already covers that case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import Backend, BackendRequest, BackendUnavailable


class TorchBackend:
    name = "torch-cuda"

    def __init__(self, module, precision: str = "fp16", input_names: list[str] | None = None):
        import torch

        self.torch = torch
        self.dtype = torch.float16 if precision == "fp16" else torch.float32
        self.module = module.to("cuda", self.dtype).eval() if hasattr(module, "to") else module
        self.precision = precision
        self.input_names = input_names or ["input"]

    @classmethod
    def open(cls, module, onnx_path: Path, precision: str = "fp16") -> "TorchBackend":
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailable(f"torch is not installed: {exc}") from exc
        if not torch.cuda.is_available():
            raise BackendUnavailable("torch has no CUDA device")
        if module is None:
            archive = Path(onnx_path).with_suffix(".pt2")
            if not archive.is_file():
                raise BackendUnavailable(f"no torch module for this model (pass one, or save {archive.name})")
            module = torch.export.load(str(archive)).module()
        elif isinstance(module, (str, Path)):
            module = torch.export.load(str(module)).module()
        return cls(module, precision)

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        args = [torch.from_numpy(np.ascontiguousarray(feed[name])).to("cuda", self.dtype, non_blocking=True)
                for name in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [o.float().cpu().numpy() for o in outs]


class TorchCuda:
    name = "torch-cuda"
    precisions = ("fp32", "fp16")
    order = 30
    settings = None

    def describe(self) -> tuple[bool, str]:
        import torch

        cuda = torch.cuda.is_available()
        detail = f"torch {torch.__version__}, " + (f"CUDA {torch.cuda.get_device_name(0)}" if cuda else "no CUDA device")
        return cuda, detail + " (runs models that ship a torch module or .pt2)"

    def open(self, request: BackendRequest, precision: str) -> Backend:
        return TorchBackend.open(request.torch_module, request.path, precision=precision)


PLUGIN = TorchCuda()
