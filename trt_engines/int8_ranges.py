"""INT8 copies of a float ONNX from activation ranges: ONNX Runtime's quantiser, fed by its calibration cache.

Calibration (`calibration.quantize`) measures each activation tensor's range on real data and keeps it in a
ranges file (ONNX Runtime's calibration cache, a few KB of JSON). From the float ONNX and that file, an INT8
copy takes a few seconds to make (SFace: 5 s on the 2-core CPU host), in either form:
- "qdq": QuantizeLinear/DequantizeLinear pairs, which ONNX Runtime runs and TensorRT builds from;
- "qoperator": QLinearConv and kin, the only INT8 form OpenCV's DNN reads.
So a ranges file can ship with faceedge where the model it quantises already does (the recognizer), and both
forms are made on the machine that runs them.

Per-channel symmetric int8 weights, and uint8 activations over each tensor's range: a ReLU output spans
[0, max], so uint8 gives it all 256 levels where symmetric int8 leaves it 128 (the selection model's INT8 copy
kept the best face in 0.944 of the choose tracks with uint8 activations, 0.904 with symmetric int8, at the
same layout). TensorRT wants symmetric int8 activations and float biases; it builds from
`tensorrt_qdq.tensorrt_qdq`, which re-encodes the same scales.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

from faceedge.edge.model_files import sha256_file

FORMATS = ("qdq", "qoperator")
WEIGHTED_OPS = {"Conv", "Gemm", "MatMul", "ConvTranspose"}
# ONNX Runtime reads a calibration cache in `quantize_static` from this release on.
RANGES_MIN_ORT = "1.27"


def float_nodes(model, leading: int = 1) -> list[str]:
    """The first `leading` weighted layers (graph order), and every node from each graph
    output back to (and including) the last weighted layer: they stay in float.

    The first layer sees raw pixels, and a score squeezed through an int8 output grid
    loses the resolution that picks one face among several good ones. Measured on the
    selection model: best face kept 0.683 (all int8) -> 0.867 (float head) -> 0.917
    (float head and first layer), 60 report tracks each. Its early activations are where
    int8 rounding hurts most (docs/decisions/011-selection-int8-layout.md), so it keeps three leading layers in float.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    head, stack = [], [out.name for out in model.graph.output]
    head.extend([n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS][:max(0, leading)])
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in head:
            continue
        head.append(node.name)
        if node.op_type not in WEIGHTED_OPS:
            stack.extend(name for name in node.input if name in producer)
    return head


@contextlib.contextmanager
def working_directory(path: str):
    """chdir for the block: ORT's pre-processing writes scratch files (sym_shape_infer_temp.onnx, <uuid>.data)
    into the working directory. Quantising runs once per model file, never inside the pipeline's threads."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def pre_process(float_path: Path, out: Path) -> None:
    """ORT's pre-processing (shape inference, graph fusions): the graph calibration measures and both forms quantise."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(float_path), str(out), skip_symbolic_shape=False)
    except Exception:  # symbolic inference gives up on some dynamic graphs (YuNet's free H, W)
        quant_pre_process(str(float_path), str(out), skip_symbolic_shape=True)


def quantize(pre: Path, out: Path, fmt: str, ranges: Path, *, reader=None, method: str = "percentile",
             percentile: float = 99.99, leading_float: int = 1) -> Path:
    """`pre` (pre-processed float) -> INT8 `out` in form `fmt`. With a `reader` (calibration data) the ranges are
    measured and written to `ranges`; without one they are read from it."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calibrators = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
                   "minmax": CalibrationMethod.MinMax}
    if reader is None:
        require_reading_ranges()
    # An older ORT still calibrates from data; it just keeps no ranges file.
    cache = {"calibration_cache_path": str(ranges)} if reads_ranges() else {}
    quantize_static(
        str(pre), str(out), reader,
        nodes_to_exclude=float_nodes(onnx.load(str(pre)), leading_float),
        quant_format={"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}[fmt], per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=calibrators[method],
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "CalibPercentile": percentile},
        **cache,
    )
    return out


def ranges_settings(ranges: Path) -> dict:
    """What faceedge recorded beside the ranges: the calibration method and percentile, the float layers."""
    return json.loads(Path(ranges).read_text()).get("faceedge", {})


def record_settings(ranges: Path, **settings) -> None:
    """Add faceedge's settings to a ranges file ORT wrote (ORT reads only its own keys back)."""
    payload = json.loads(Path(ranges).read_text())
    payload["faceedge"] = settings
    Path(ranges).write_text(json.dumps(payload))


def reads_ranges() -> bool:
    """Whether this ONNX Runtime reads and writes ranges files."""
    from onnxruntime.quantization import quantize_static

    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


class RangesUnusable(RuntimeError):
    """A ranges file cannot make an INT8 copy here: this ONNX Runtime cannot read it, or it does not fit the model."""


def ranges_path(int8_path: Path) -> Path:
    """Where the ranges an INT8 copy was quantised with are kept: beside it."""
    return Path(int8_path).with_suffix(".ranges.json")


def require_reading_ranges() -> None:
    import onnxruntime

    if not reads_ranges():
        raise RangesUnusable(f"an INT8 copy from a ranges file needs onnxruntime >= {RANGES_MIN_ORT} "
                                 f"(this is {onnxruntime.__version__})")


def copy_suffix(fmt: str) -> str:
    """What names an INT8 copy made from ranges, after the float file's stem and before its digest."""
    return f".int8-{fmt}-"


def from_ranges(float_path: Path, ranges: Path, fmt: str) -> Path:
    """The INT8 copy of `float_path` in form `fmt`, quantised with `ranges`; cached beside the float file,
    keyed by both files' contents."""
    if fmt not in FORMATS:
        raise ValueError(f"INT8 form must be one of {FORMATS}, got {fmt!r}")
    float_path, ranges = Path(float_path).resolve(), Path(ranges).resolve()
    digest = hashlib.sha256(f"{sha256_file(float_path)}:{sha256_file(ranges)}".encode()).hexdigest()[:16]
    target = float_path.with_name(f"{float_path.stem}{copy_suffix(fmt)}{digest}.onnx")
    if target.is_file():
        return target
    settings = ranges_settings(ranges)
    require_reading_ranges()
    with tempfile.TemporaryDirectory() as tmp, working_directory(tmp):
        pre = Path(tmp) / "pre.onnx"
        pre_process(float_path, pre)
        # ORT may rewrite the cache it reads; quantise from a copy so the shipped file stays as shipped.
        cache = Path(tmp) / "ranges.json"
        shutil.copyfile(ranges, cache)
        try:
            staged = quantize(pre, Path(tmp) / "int8.onnx", fmt, cache, method=settings.get("method", "percentile"),
                              percentile=settings.get("percentile", 99.99),
                              leading_float=settings.get("leading_float_layers", 1))
        except (KeyError, ValueError, RuntimeError) as exc:  # ORT's words for a tensor the ranges lack
            raise RangesUnusable(f"{ranges.name} does not fit {float_path.name}: {exc}") from exc
        tmp_out = target.with_suffix(f".tmp{os.getpid()}")
        shutil.move(staged, tmp_out)
        os.replace(tmp_out, target)
    return target
