"""`faceedge soak --streams N --minutes M --video FILE [--restart-at-s S] [--json OUT]`: a benchmark, not a test."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--streams", type=int, default=4, help="number of RTSP streams (one server, one mount each)")
    parser.add_argument("--minutes", type=float, default=20, help="how long the pipeline runs")
    parser.add_argument("--video", required=True, help="H.264 MP4 served by the loopback RTSP server (looped)")
    parser.add_argument("--restart-at-s", type=float, help="kill the RTSP server at this second, restart it later")
    parser.add_argument("--outage-s", type=float, default=5, help="how long the server stays down")
    parser.add_argument("--port", type=int, help="RTSP port (default: a free one)")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the pipeline (repeatable)")


def run(args) -> int:
    from ..errors import ConfigError
    from ..soak import run_soak

    if args.streams < 1 or args.minutes <= 0:
        raise ConfigError("--streams must be >= 1 and --minutes > 0")
    return run_soak(args)
