"""`faceedge doctor`."""

from __future__ import annotations

from .. import doctor


def add_arguments(parser) -> None:
    parser.add_argument("--check-install", action="store_true", help="only check the install; exit 1 on a problem")


def run(args) -> int:
    return doctor.main(["--check-install"] if args.check_install else [])
