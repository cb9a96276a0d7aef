"""`faceedge train quality|selection|sr`: each model's trainer lives in `pipelines/`."""

from __future__ import annotations

import importlib

# model -> module defining add_arguments(parser) and run(args) -> int
TRAINERS = {
    "quality": "pipelines.quality.cli",
    "selection": "pipelines.selection.cli",
    "sr": "pipelines.sr.cli",
}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name, module in TRAINERS.items():
        command = sub.add_parser(name, help=f"train the {name} model")
        command.set_defaults(_trainer=module)
        importlib.import_module(module).add_arguments(command)


def run(args) -> int:
    return importlib.import_module(args._trainer).run(args)
