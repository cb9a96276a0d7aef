"""`faceedge train quality|selection|sr`: each model's trainer lives in `pipelines/`."""

from __future__ import annotations

from . import add_module_subcommands, run_module

TRAINERS = {
    "quality": ("faceedge.pipelines.quality.cli", "train the GAN-graded quality model"),
    "selection": ("faceedge.pipelines.selection.cli", "train the recognition-aware selection model"),
    "sr": ("faceedge.pipelines.sr.cli", "train the identity-preserving super-resolution generator"),
}


def add_arguments(parser) -> None:
    add_module_subcommands(parser, TRAINERS, "model")


run = run_module
