"""`faceedge` command line. Only the chosen subcommand's module is imported,
so `faceedge subscribe` does not pay for torch or onnxruntime."""

from __future__ import annotations

import argparse
import logging
import sys

from .commands import add_module_subcommands, run_module
from .errors import FaceEdgeError

# name -> (module, help). Each module defines add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "run": ("faceedge.edge.commands.run", "run the pipeline on streams, an RTSP URL or a file"),
    "demo": ("faceedge.edge.commands.demo", "build a clip from bundled photos, run the pipeline on it, save what it publishes"),
    "subscribe": ("faceedge.edge.commands.subscribe", "receive published faces and save them to a folder"),
    "bench": ("faceedge.edge.commands.bench", "decode-only vs full-pipeline speed on one input; `bench models`: per-model "
              "backends; `bench density`: real-time cameras per box"),
    "doctor": ("faceedge.edge.commands.doctor", "report the install, backends and models"),
    "train": ("faceedge.edge.commands.train", "train a model from a folder of identity subfolders"),
    "eval": ("faceedge.edge.commands.eval", "evaluate a model on held-out identities"),
    "build-engines": ("faceedge.edge.commands.build_engines", "calibrate INT8 and build TensorRT engines ahead of time"),
    "keys": ("faceedge.edge.commands.keys", "create a ZeroMQ CURVE key pair (publisher or subscriber)"),
    "relay": ("faceedge.edge.commands.relay", "fan in many faceedge publishers to one subscriber endpoint (XSUB/XPUB proxy)"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceedge", description="Real-time face best-shot engine for camera streams.")
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    add_module_subcommands(parser, COMMANDS, "command", argv)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return run_module(args)
    except FaceEdgeError as exc:
        logging.getLogger("faceedge").error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
