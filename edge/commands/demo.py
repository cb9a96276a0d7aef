"""`faceedge demo`: the embedded default, needing no file and no network."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="out/demo", help="folder for the clip, faces, faces.jsonl and contact sheet")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the generated clip")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable)")


def run(args) -> int:
    from ..demo import run_demo

    summary = run_demo(Path(args.out), args.overrides, args.seconds)
    print(json.dumps(summary, indent=2))
    return 0 if summary["status"] == 0 and summary["faces"] > 0 else 1
