"""`faceedge eval selection|sr`: evaluations that print side-by-side comparisons."""

from __future__ import annotations

import importlib

EVALUATIONS = {
    "selection": "pipelines.selection.evaluate",
    "sr": "pipelines.sr.evaluate",
}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    for name, module in EVALUATIONS.items():
        command = sub.add_parser(name, help=f"evaluate {name}")
        command.set_defaults(_evaluation=module)
        importlib.import_module(module).add_arguments(command)


def run(args) -> int:
    return importlib.import_module(args._evaluation).run(args)
