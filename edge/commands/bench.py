"""`faceedge bench --input FILE`: decode-only vs full pipeline, side by side in one run."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    parser.add_argument("--input", required=True, help="video file or URL to measure on")
    parser.add_argument("--frames", type=int, default=300, help="frames to time in each mode (the input loops)")
    parser.add_argument("--json", help="also write the result to this file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def run(args) -> int:
    from ..bench import run_bench

    result = run_bench(args.input, args.frames, args.overrides)
    print(f"input: {result['input']} ({result['frames']} frames timed, detector input {result['detector_input_size']})")
    print(f"decode-only   {result['decode_only_fps']:8.1f} frames/s")
    print(f"full pipeline {result['pipeline_fps']:8.1f} frames/s   ratio {result['ratio']:.3f}")
    print(f"{'stage':10s} {'mean ms':>9s} {'p95 ms':>9s} {'count':>7s}")
    for stage, row in result["stages"].items():
        print(f"{stage:10s} {row['mean_ms']:9.2f} {row['p95_ms']:9.2f} {row['count']:7d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0
