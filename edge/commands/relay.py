"""`faceedge relay --bind ENDPOINT --connect BOX [--connect BOX ...]`: one subscriber endpoint for many boxes."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("faceedge")


def add_arguments(parser) -> None:
    parser.add_argument("--bind", required=True, help="where subscribers connect, e.g. tcp://0.0.0.0:5557")
    parser.add_argument("--connect", action="append", required=True, metavar="ENDPOINT",
                        help="a faceedge publisher, e.g. tcp://box1:5556 (repeatable)")
    parser.add_argument("--send-hwm", type=int, default=10000,
                        help="messages queued per subscriber; past it the relay drops that subscriber's messages")
    parser.add_argument("--curve-server-key", action="append", default=[], metavar="FILE",
                        help="CURVE towards the boxes: a box's public key (server.key); once for every box or once "
                             "per --connect, in order; needs --curve-client-key")
    parser.add_argument("--curve-client-key", metavar="FILE",
                        help="CURVE towards the boxes: the relay's secret key file (NAME.key_secret), its public "
                             "half allowed on every box")
    parser.add_argument("--curve-secret-key", metavar="FILE",
                        help="CURVE towards subscribers: the relay's own secret key file; needs "
                             "--curve-allowed-clients")
    parser.add_argument("--curve-allowed-clients", metavar="DIR",
                        help="CURVE towards subscribers: folder of allowed subscribers' public keys (*.key)")


def upstream_keys(args) -> list | None:
    from ..errors import ConfigError
    from ..security import CurveClientKeys

    if not args.curve_server_key and not args.curve_client_key:
        return None
    if not (args.curve_server_key and args.curve_client_key):
        raise ConfigError("CURVE towards the boxes needs both --curve-server-key and --curve-client-key")
    servers = args.curve_server_key
    if len(servers) == 1:
        servers = servers * len(args.connect)
    if len(servers) != len(args.connect):
        raise ConfigError(f"{len(args.curve_server_key)} --curve-server-key for {len(args.connect)} --connect: "
                          "give one for every box, or one per --connect")
    return [CurveClientKeys.from_files(server, args.curve_client_key) for server in servers]


def run(args) -> int:
    from ..errors import ConfigError
    from ..relay import Relay

    if bool(args.curve_secret_key) != bool(args.curve_allowed_clients):
        raise ConfigError("CURVE towards subscribers needs both --curve-secret-key and --curve-allowed-clients")
    server_keys = (args.curve_secret_key, args.curve_allowed_clients) if args.curve_secret_key else None
    relay = Relay(args.bind, args.connect, upstream_keys(args), server_keys, args.send_hwm).start()
    stopped = threading.Event()

    def handle(signum, _frame):
        log.info("%s: stopping the relay", signal.Signals(signum).name)
        stopped.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not stopped.wait(0.5):
        pass
    relay.stop()
    return 0
