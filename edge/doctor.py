"""Environment checks: one owner per native module, the backends and models this install can use."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faceedge doctor")
    parser.add_argument("--check-install", action="store_true", help="only check the install; exit 1 on a problem")
    args = parser.parse_args(argv)
    problems = install_problems()
    for problem in problems:
        print(f"install problem: {problem}", file=sys.stderr)
    if args.check_install:
        if not problems:
            print("install ok: one owner for each of " + ", ".join(EXCLUSIVE))
        return 1 if problems else 0
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
