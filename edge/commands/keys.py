"""`faceedge keys --out DIR --name NAME`: a ZeroMQ CURVE key pair for the publisher or a subscriber."""

from __future__ import annotations

import logging
import re

log = logging.getLogger("faceedge")


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for NAME.key and NAME.key_secret")
    parser.add_argument("--name", required=True, help="e.g. server, or a subscriber's name")


def run(args) -> int:
    from ..errors import ConfigError
    from ..security import create_key_pair

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.name):
        raise ConfigError(f"--name {args.name!r}: use letters, digits, '_', '.', '-'")
    public, secret = create_key_pair(args.out, args.name)
    log.info("wrote %s (public: hand it out) and %s (secret, mode 0600: keep it private)", public, secret)
    print(public)
    print(secret)
    return 0
