"""`faceedge bench --input FILE`: decode-only vs full pipeline, side by side in one run; `bench density`: real-time
cameras per box."""

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
    parser.add_argument("--against", action="append", default=[], metavar="KEY=VALUE",
                        help="also run the pipeline with this override (repeatable) in every round, after the base "
                             "pipeline in even rounds and before it in odd ones: the median per-round frames/s "
                             "ratio is its cost")
    modes = parser.add_subparsers(dest="mode", metavar="models|density")
    bench_models.add_arguments(modes.add_parser("models", help="per-model throughput and latency by backend "
                                                               "and precision, and INT8 agreement"))
    add_density_arguments(modes.add_parser("density", help="real-time cameras per box: N looped copies of a clip, "
                                                           "drops, detection rate, latency, decode-only ceiling"))


def add_density_arguments(parser) -> None:
    parser.add_argument("--input", required=True, help="video file played as every camera")
    parser.add_argument("--streams", type=int, help="cameras to run; without it, the largest N with no frame "
                                                    "dropped is searched from 1 up")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per trial")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds run before each trial's counters")
    parser.add_argument("--max-streams", type=int, default=32, help="where the search stops")
    parser.add_argument("--decode-seconds", type=float, default=5.0, help="timed decode-only run")
    parser.add_argument("--config", help="YAML config (its streams are replaced)")
    parser.add_argument("--set", dest="set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", dest="json_out", help="also write the result to this file")


def run(args) -> int:
    if args.mode == "models":
        from . import bench_models

        return bench_models.run(args)
    if args.mode == "density":
        return run_density(args)
    if not args.input:
        from ..errors import ConfigError

        raise ConfigError("faceedge bench needs --input FILE (or `faceedge bench models`)")
    from ..bench import run_bench

    result = run_bench(args.input, args.frames, args.overrides, args.repeats, args.against)
    print(f"input: {result['input']} ({result['frames']} pipeline frames timed in {result['repeats']} rounds, "
          f"detector input {result['detector_input_size']}, {result['decoder_threads']} decoder thread(s) in both modes)")
    for index, row in enumerate(result["rounds"], 1):
        extra = f"  against {row['against_fps']:7.1f} ({row['against_ratio']:.3f})" if args.against else ""
        print(f"round {index}: decode-only {row['decode_only_fps']:7.1f}  pipeline {row['pipeline_fps']:7.1f}  "
              f"ratio {row['ratio']:.3f}{extra}")
    print(f"decode-only   {result['decode_only_fps']:8.1f} frames/s (median)")
    print(f"full pipeline {result['pipeline_fps']:8.1f} frames/s (median)   ratio {result['ratio']:.3f} (median)")
    if args.against:
        print(f"with {' '.join(args.against)}: {result['against_fps']:8.1f} frames/s (median), "
              f"{result['against_ratio']:.3f} of the pipeline's (median of the rounds' ratios; 95 % interval "
              f"{result['against_ratio_interval95'][0]:.3f}-{result['against_ratio_interval95'][1]:.3f})")
    print(f"{'stage':10s} {'mean ms':>9s} {'p95 ms':>9s} {'count':>7s}")
    for stage, row in result["stages"].items():
        print(f"{stage:10s} {row['mean_ms']:9.2f} {row['p95_ms']:9.2f} {row['count']:7d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


def _latency(row: dict) -> str:
    p50, p95 = row["p50_ms"], row["p95_ms"]
    return "        -" if p50 is None else f"{p50:5.0f}/{p95:<5.0f}"


def _print_trial(trial: dict) -> None:
    total = trial["total"]
    print(f"N={trial['streams']:2d} {'keeps real time' if trial['realtime'] else 'falls behind':15s} "
          f"dropped {total['dropped']:5d}  detected {total['detected_fps']:6.1f} frames/s  "
          f"frame latency p50/p95 {_latency(total['frame_latency'])} ms", flush=True)


def run_density(args) -> int:
    from ..density import run_density as measure

    if args.streams is not None and args.streams < 1:
        from ..errors import ConfigError

        raise ConfigError("--streams must be at least 1")
    result = measure(args.input, args.streams, args.seconds, args.warmup, args.set, args.max_streams, args.config,
                     args.decode_seconds, progress=_print_trial)
    print(f"input: {result['input']} at {result['clip_fps']:g} frames/s, {result['seconds']:g} s per trial")
    print(f"{'stream':8s} {'decoded':>8s} {'skipped':>8s} {'dropped':>8s} {'detected':>8s} {'det/s':>7s} "
          f"{'interval':>8s} {'frame ms p50/p95':>17s} {'publish ms p50/p95':>19s}")
    for row in result["per_stream"]:
        print(f"{row['stream']:8s} {row['decoded']:8d} {row['skipped']:8d} {row['dropped']:8d} {row['detected']:8d} "
              f"{row['detected_fps']:7.1f} {row['interval_end']:8d} {_latency(row['frame_latency']):>17s} "
              f"{_latency(row['publish_latency']):>19s}")
    total = result["total"]
    print(f"{'total':8s} {total['decoded']:8d} {total['skipped']:8d} {total['dropped']:8d} {total['detected']:8d} "
          f"{total['detected_fps']:7.1f} {'':8s} {_latency(total['frame_latency']):>17s} "
          f"{_latency(total['publish_latency']):>19s}")
    events = ", ".join(f"{event} {_latency(row).strip()}" for event, row in total["publish_latency_by_event"].items())
    print(f"publish ms p50/p95 by event: {events or 'none'}; each track's first message "
          f"{_latency(total['first_publish_latency']).strip()}")
    label = "largest N keeping real time" if result["searched"] else f"N={result['decode_only_streams']} real time"
    print(f"{label}: {result['max_realtime_streams']}")
    print(f"decode-only ceiling ({result['decode_only_streams']} decoder(s), {result['decoder_threads']} thread(s) "
          f"each, every frame): {result['decode_only_fps']:.1f} frames/s = {result['decode_only_max_streams']} "
          f"camera(s)")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0
