"""What every inference backend plugin builds on: the backend and plugin contracts, the request.

The bottom of the backend layer: the plugins (`trt_engines/plugins/`) and the registry
(`trt_engines/backends.py`) import this module, and it imports neither; below it is only
`int8_ranges`, which makes INT8 copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
from pydantic import BaseModel

from faceedge.edge.errors import ModelFileError

from .int8_ranges import RangesUnusable, from_ranges, ranges_path

Settings = TypeVar("Settings", bound=BaseModel)


class Backend(Protocol):
    """One opened model: plain numpy arrays in, numpy arrays out."""

    name: str
    precision: str
    input_names: list[str]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class BackendPlugin(Protocol):
    """One inference backend, as the registry finds it in a plugin module's `PLUGIN`."""

    name: str  # what `inference.backend` and `inference.order` call it
    precisions: tuple[str, ...]  # what it runs natively; anything else is downgraded or skipped
    order: int  # its place in the default `auto` order, lowest first
    # Its keys of the `inference` config section (a pydantic model, fields with defaults; names the
    # section's own keys and other plugins' do not use), or None.
    settings: type[BaseModel] | None

    def describe(self) -> tuple[bool, str]:
        """(usable here, detail) without opening a model; may raise ImportError or RuntimeError."""

    def open(self, request: "BackendRequest", precision: str) -> Backend:
        """Open the request's model at `precision`; raise BackendUnavailable (or ImportError) if it cannot run here."""


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (library, device or model missing); try the next one."""


def int8_model_path(onnx_path: Path) -> Path:
    """Where calibration writes the QDQ INT8 twin of a float ONNX."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.stem + ".int8.onnx")


@dataclass
class BackendRequest:
    """Everything a backend plugin may need to open one model."""

    path: Path  # float ONNX, dynamic batch
    precision: str = "fp32"
    max_batch: int = 32
    profile: dict | None = None  # TensorRT shape profile; None = batch 1..max_batch at the ONNX shape
    torch_module: object | None = None  # nn.Module or path to a torch.export .pt2
    model: str = "model"
    options: dict = field(default_factory=dict)  # plugins' settings by key (threads, engine_cache, ...)
    # Activation ranges that ship with faceedge for this model (`int8_ranges`): its INT8 copies are made from
    # them where calibration has made none.
    int8_ranges: Path | None = None

    def settings(self, model: type[Settings]) -> Settings:
        """A plugin's settings from the request's options (its defaults for keys not given)."""
        return model.model_validate({key: value for key, value in self.options.items() if key in model.model_fields})

    def onnx_for(self, precision: str) -> Path:
        """The file to run at `precision`; for int8 the QDQ copy: calibration's, or one made from shipped ranges."""
        if precision != "int8":
            return self.path
        qdq = int8_model_path(self.path)
        if qdq.is_file():
            return qdq
        return self._from_ranges(self.int8_ranges, "qdq", f"{qdq} missing")

    def qoperator_onnx(self) -> Path:
        """The INT8 copy in QOperator form (OpenCV's), from calibration's ranges, else the shipped ones."""
        calibrated = ranges_path(int8_model_path(self.path))
        return self._from_ranges(calibrated if calibrated.is_file() else self.int8_ranges, "qoperator",
                                 f"no ranges at {calibrated}")

    def _from_ranges(self, ranges: Path | None, fmt: str, missing: str) -> Path:
        if ranges is None:
            raise ModelFileError(f"no INT8 model for {self.model} ({missing}): run "
                                 f"`faceedge build-engines --precision int8` to calibrate it")
        try:
            return from_ranges(self.path, ranges, fmt)
        except RangesUnusable as exc:
            raise BackendUnavailable(f"{self.model}: {exc}; or set inference.precision.{self.model}: fp16") from exc
