"""Environment checks: one owner per native module, the backends and models this install can use."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import sys
from pathlib import Path

# Distributions that each install the same top-level module: exactly one may be present.
EXCLUSIVE = {
    "cv2": ["opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"],
    "onnxruntime": ["onnxruntime", "onnxruntime-gpu"],
}


def installed(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def install_problems() -> list[str]:
    problems = []
    for module, dists in EXCLUSIVE.items():
        owners = [f"{d}=={installed(d)}" for d in dists if installed(d)]
        if len(owners) > 1:
            problems.append(f"module {module!r} is owned by {len(owners)} distributions ({', '.join(owners)}); "
                            f"uninstall all but one")
        if not owners:
            problems.append(f"module {module!r}: none of {dists} is installed")
    return problems


def engine_cache_report(folder: Path) -> list[str]:
    """One line per cached TensorRT engine (from its sidecar), per calibrated INT8 ONNX and per INT8 copy made from
    ranges (`trt_engines.int8_ranges`)."""
    from faceedge.edge.model_files import cache_dir
    from faceedge.trt_engines.int8_ranges import FORMATS, copy_suffix

    lines = []
    for plan in sorted(folder.glob("*.engine")) if folder.is_dir() else []:
        sidecar = plan.with_suffix(".json")
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        lines.append(f"engine {plan.name}: {meta.get('precision', '?')} for {meta.get('gpu_name', '?')} "
                     f"sm {meta.get('compute_capability', '?')}, TensorRT {meta.get('trt_version', '?')}, "
                     f"{plan.stat().st_size / 1e6:.1f} MB")
    for qdq in sorted((cache_dir() / "onnx").glob("*.int8.onnx")):
        report = qdq.with_suffix(".json")
        method = json.loads(report.read_text()).get("method", "?") if report.is_file() else "?"
        lines.append(f"int8 {qdq.name}: calibrated with {method}")
    for fmt in FORMATS:
        for copy in sorted((cache_dir() / "onnx").glob(f"*{copy_suffix(fmt)}*.onnx")):
            lines.append(f"int8 {copy.name}: {fmt} form made from ranges")
    return lines


def backend_report(engine_cache: Path | None = None) -> list[str]:
    from faceedge.edge.model_files import cache_dir
    from faceedge.trt_engines.backends import describe_backends

    lines = [f"backend {name}: {'available' if ok else 'unavailable'} - {detail}"
             for name, ok, detail in describe_backends()]
    folder = Path(engine_cache) if engine_cache else cache_dir() / "engines"
    cached = engine_cache_report(folder)
    lines.append(f"engine cache {folder}: {len(cached)} entr{'y' if len(cached) == 1 else 'ies'}")
    lines += ["  " + line for line in cached]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faceedge doctor")
    parser.add_argument("--check-install", action="store_true", help="only check the install; exit 1 on a problem")
    parser.add_argument("--engine-cache", default=None, help="TensorRT engine cache folder to report")
    args = parser.parse_args(argv)
    problems = install_problems()
    for problem in problems:
        print(f"install problem: {problem}", file=sys.stderr)
    if args.check_install:
        if not problems:
            print("install ok: one owner for each of " + ", ".join(EXCLUSIVE))
        return 1 if problems else 0
    for line in backend_report(args.engine_cache):
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
