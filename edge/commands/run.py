"""`faceedge run`: the pipeline on an RTSP URL, a file, or the streams of a config file."""

from __future__ import annotations

import logging
import signal

from ..config import load_config

log = logging.getLogger("faceedge")


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--rtsp", metavar="URL", help="RTSP camera URL (credentials are masked in every output)")
    source.add_argument("--input", metavar="FILE", help="a video file (processed frame by frame)")
    parser.add_argument("--rtsp-transport", choices=["tcp", "udp"], default="tcp")
    parser.add_argument("--stream-id", help="stream id for --rtsp/--input (default: cam0, or the file name)")
    parser.add_argument("--realtime", action="store_true", help="pace a file at its frame rate, like a camera")
    parser.add_argument("--config", help="YAML config (see config/faceedge.yaml); built-in defaults without it")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set detect.min_face=24 (repeatable)")


def config_from_args(args):
    from ..pipeline import stream_id_for

    extra = {}
    if args.rtsp or args.input:
        url = args.rtsp or args.input
        stream = {"id": args.stream_id or ("cam0" if args.rtsp else stream_id_for(url)), "url": url,
                  "transport": args.rtsp_transport, "realtime": bool(args.realtime)}
        extra["streams"] = [stream]
    return load_config(args.config, args.overrides, extra)


def install_signal_handlers(pipeline) -> None:
    def handle(signum, _frame):
        log.info("%s: stopping; publishing the best face of every live track", signal.Signals(signum).name)
        pipeline.stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run(args) -> int:
    from ..pipeline import Pipeline

    config = config_from_args(args)
    logging.getLogger().setLevel((args.log_level or config.log_level).upper())
    pipeline = Pipeline(config)
    install_signal_handlers(pipeline)
    return pipeline.run()
