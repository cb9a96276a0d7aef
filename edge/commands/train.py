"""`faceedge train quality|selection|sr`: each model's trainer lives in `pipelines/`."""

from __future__ import annotations

from . import add_module_subcommands, run_module

TRAINERS = {
    "quality": ("faceedge.pipelines.quality.cli", "train the quality model (seed 000)"),
    "selection": ("faceedge.pipelines.selection.cli", "train the selection model (seed 002)"),
    "sr": ("faceedge.pipelines.sr.cli", "train the super-resolution generator (seeds 003, 004, 001)"),
}


def add_arguments(parser) -> None:
    add_module_subcommands(parser, TRAINERS, "model")


run = run_module
