"""`faceedge bench --input FILE`: decode-only vs full pipeline, side by side in one run."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    from . import bench_models

    parser.add_argument("--input", help="video file or URL to measure on")
    parser.add_argument("--frames", type=int, default=300, help="frames to time in each mode (the input loops)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of decode-only then pipeline; the medians are reported")
    parser.add_argument("--json", help="also write the result to this file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    modes = parser.add_subparsers(dest="mode", metavar="models")
    bench_models.add_arguments(modes.add_parser("models", help="per-model throughput and latency by backend "
                                                               "and precision, and INT8 agreement"))


def run(args) -> int:
    if args.mode == "models":
        from . import bench_models

        return bench_models.run(args)
    if not args.input:
        from ..errors import ConfigError

        raise ConfigError("faceedge bench needs --input FILE (or `faceedge bench models`)")
    from ..bench import run_bench

    result = run_bench(args.input, args.frames, args.overrides, args.repeats)
    print(f"input: {result['input']} ({result['frames']} pipeline frames timed in {result['repeats']} rounds, "
          f"detector input {result['detector_input_size']}, {result['decoder_threads']} decoder thread(s) in both modes)")
    for index, row in enumerate(result["rounds"], 1):
        print(f"round {index}: decode-only {row['decode_only_fps']:7.1f}  pipeline {row['pipeline_fps']:7.1f}  "
              f"ratio {row['ratio']:.3f}")
    print(f"decode-only   {result['decode_only_fps']:8.1f} frames/s (median)")
    print(f"full pipeline {result['pipeline_fps']:8.1f} frames/s (median)   ratio {result['ratio']:.3f} (median)")
    print(f"{'stage':10s} {'mean ms':>9s} {'p95 ms':>9s} {'count':>7s}")
    for stage, row in result["stages"].items():
        print(f"{stage:10s} {row['mean_ms']:9.2f} {row['p95_ms']:9.2f} {row['count']:7d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0
