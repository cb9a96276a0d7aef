"""Where a serialised TensorRT engine lives, keyed by everything that makes it valid.

A plan file is only valid for the exact ONNX graph, GPU model and compute capability,
TensorRT version, precision and optimisation-profile shapes it was built for. The key
hashes all of them, so an engine is rebuilt exactly when one changes and reused otherwise.
Pure Python: no TensorRT needed to compute or test it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

PRECISIONS = ("fp32", "fp16", "int8")

# input name -> (min, opt, max) shapes, each a tuple of ints.
ShapeProfile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


def normalise_profile(profile: ShapeProfile) -> tuple:
    """Canonical, order-independent form of a profile (dict order must not change the key)."""
    canon = []
    for name in sorted(profile):
        shapes = tuple(tuple(int(d) for d in shape) for shape in profile[name])
        if len(shapes) != 3 or len({len(s) for s in shapes}) != 1:
            raise ValueError(f"profile for input {name!r} needs min/opt/max shapes of one rank, got {shapes}")
        if any(not (lo <= op <= hi) for lo, op, hi in zip(*shapes)):
            raise ValueError(f"profile for input {name!r} is not min <= opt <= max: {shapes}")
        canon.append((name, shapes))
    return tuple(canon)


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    gpu_name: str
    compute_capability: str  # "8.7" (Orin), "9.0" (H100)
    trt_version: str
    precision: str
    profile: tuple  # normalise_profile(...) output

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def filename(self, stem: str) -> str:
        return f"{stem}-{self.precision}-{self.digest()}.engine"


def make_key(onnx_sha256: str, gpu_name: str, compute_capability: str, trt_version: str,
             precision: str, profile: ShapeProfile) -> EngineKey:
    return EngineKey(onnx_sha256, gpu_name.strip(), compute_capability, trt_version, precision,
                     normalise_profile(profile))


def engine_path(cache_dir: Path, stem: str, key: EngineKey) -> Path:
    return Path(cache_dir) / key.filename(stem)


def write_sidecar(path: Path, key: EngineKey) -> None:
    """Human-readable record of what an engine was built for, for `faceedge doctor`."""
    path.with_suffix(".json").write_text(json.dumps(asdict(key), indent=1))


def batch_profile(input_name: str, item_shape: tuple[int, ...], max_batch: int, opt_batch: int | None = None,
                  min_item_shape: tuple[int, ...] | None = None, max_item_shape: tuple[int, ...] | None = None
                  ) -> ShapeProfile:
    """Dynamic-batch profile 1..max_batch (optionally dynamic spatial size) for one input."""
    opt = opt_batch or max_batch
    lo = (1, *(min_item_shape or item_shape))
    hi = (max_batch, *(max_item_shape or item_shape))
    return {input_name: (lo, (opt, *item_shape), hi)}
