"""`faceedge doctor`."""

from __future__ import annotations

from .. import doctor


def add_arguments(parser) -> None:
    parser.add_argument("--check-install", action="store_true", help="only check the install; exit 1 on a problem")
    parser.add_argument("--engine-cache", default=None, help="TensorRT engine cache folder to report")


def run(args) -> int:
    argv = ["--check-install"] if args.check_install else []
    if args.engine_cache:
        argv += ["--engine-cache", args.engine_cache]
    return doctor.main(argv)
