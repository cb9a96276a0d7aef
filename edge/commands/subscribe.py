"""`faceedge subscribe tcp://HOST:5556 --out DIR`."""

from __future__ import annotations

import logging

log = logging.getLogger("faceedge")


def add_arguments(parser) -> None:
    parser.add_argument("endpoint", help="publisher endpoint, e.g. tcp://127.0.0.1:5556")
    parser.add_argument("--out", required=True, help="folder for face JPEGs and faces.jsonl")
    parser.add_argument("--stream", help="only this stream's faces (topic face.<stream>)")
    parser.add_argument("--count", type=int, help="exit after this many faces")
    parser.add_argument("--timeout", type=float, help="exit after this many seconds without a message")
    parser.add_argument("--curve-server-key", metavar="FILE",
                        help="CURVE: the publisher's public key file (server.key); needs --curve-client-key")
    parser.add_argument("--curve-client-key", metavar="FILE",
                        help="CURVE: this subscriber's secret key file (NAME.key_secret), its public half allowed "
                             "on the publisher")


def run(args) -> int:
    from ..subscribe import FaceSaver, connect, receive

    curve = None
    if args.curve_server_key or args.curve_client_key:
        from ..errors import ConfigError
        from ..security import CurveClientKeys

        if not (args.curve_server_key and args.curve_client_key):
            raise ConfigError("CURVE needs both --curve-server-key and --curve-client-key")
        curve = CurveClientKeys.from_files(args.curve_server_key, args.curve_client_key)
    socket = connect(args.endpoint, f"face.{args.stream}" if args.stream else "face.", curve=curve)
    saver = FaceSaver(args.out)
    log.info("subscribed to %s; saving to %s", args.endpoint, args.out)
    try:
        saved = receive(socket, saver, args.timeout, args.count)
    except KeyboardInterrupt:
        saved = saver.count
    log.info("saved %d faces to %s", saved, args.out)
    return 0
