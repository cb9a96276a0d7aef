"""`faceedge eval selection|sr|stream`: evaluations that print side-by-side comparisons."""

from __future__ import annotations

from . import add_module_subcommands, run_module

EVALUATIONS = {
    "selection": ("faceedge.pipelines.selection.evaluate", "scorers' error-versus-discard and best-of-track rank-1"),
    "sr": ("faceedge.pipelines.sr.evaluate", "SR vs bicubic: PSNR, SSIM, identity cosine, rank-1"),
    "stream": ("faceedge.pipelines.stream_eval.cli", "the real pipeline on labelled video: people recovered, efficiency, purity"),
}


def add_arguments(parser) -> None:
    add_module_subcommands(parser, EVALUATIONS, "what")


run = run_module
