"""ZeroMQ CURVE for the face publisher: key files, the server-side authenticator, client options.

Key files are ZeroMQ certificates as `zmq.auth.create_certificates` writes them: `NAME.key`
(public key only, safe to hand out) and `NAME.key_secret` (public + secret, keep private).
Every problem with a key file is a ConfigError naming that file (exit code 2).
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
import zmq.utils.z85
from zmq.auth.thread import ThreadAuthenticator

from .errors import ConfigError

log = logging.getLogger("faceedge.security")

Z85_KEY_LENGTH = 40  # a 32-byte CURVE key in Z85 text


def _load(path: str | Path, what: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path}: file not found (create a pair with `faceedge keys --out DIR --name NAME`)")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what} {path}: cannot read a ZeroMQ certificate: {exc}") from exc
    checks = [("public key", public)] + ([("secret key", secret)] if need_secret else [])
    for name, key in checks:
        if not key or len(key) != Z85_KEY_LENGTH:
            hint = "; a secret key file is NAME.key_secret" if name == "secret key" else ""
            raise ConfigError(f"{what} {path}: no valid {name} (expected {Z85_KEY_LENGTH} Z85 characters){hint}")
        try:
            zmq.utils.z85.decode(key)
        except (ValueError, KeyError, struct.error) as exc:
            raise ConfigError(f"{what} {path}: {name} is not valid Z85") from exc
    return public, secret


def load_public_key(path: str | Path, what: str = "public key file") -> bytes:
    return _load(path, what, need_secret=False)[0]


def load_key_pair(path: str | Path, what: str = "secret key file") -> tuple[bytes, bytes]:
    return _load(path, what, need_secret=True)


def allowed_client_keys(directory: str | Path, what: str = "publish.curve.allowed_clients_dir") -> list[bytes]:
    """Every `*.key` in the folder, each checked so a corrupt one is named rather than skipped."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{what} {directory}: folder not found")
    keys = [load_public_key(path, "allowed client key file") for path in sorted(directory.glob("*.key"))]
    if not keys:
        raise ConfigError(f"{what} {directory}: no client public keys (*.key); "
                          "no subscriber could connect")
    return keys


class CurveServer:
    """Makes a socket a CURVE server; a ZAP authenticator admits only the allowed clients' keys."""

    def __init__(self, context: zmq.Context, secret_key_file: str | Path, allowed_clients_dir: str | Path,
                 names: tuple[str, str] = ("publish.curve.server_secret_key", "publish.curve.allowed_clients_dir")):
        """`names`: what an error calls the two files (config keys, or a command's options)."""
        self.public, self.secret = load_key_pair(secret_key_file, names[0])
        count = len(allowed_client_keys(allowed_clients_dir, names[1]))
        self.authenticator = ThreadAuthenticator(context, log=logging.getLogger("faceedge.zap"))
        self.authenticator.start()
        self.authenticator.configure_curve(domain="*", location=os.fspath(allowed_clients_dir))
        log.info("CURVE enabled: %d allowed subscriber key(s) from %s", count, allowed_clients_dir)

    def apply(self, socket: zmq.Socket) -> None:
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_server = True

    def stop(self) -> None:
        self.authenticator.stop()


@dataclass
class CurveClientKeys:
    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def from_files(cls, server_key_file: str | Path, client_key_file: str | Path) -> "CurveClientKeys":
        server_public = load_public_key(server_key_file, "--curve-server-key")
        client_public, client_secret = load_key_pair(client_key_file, "--curve-client-key")
        return cls(server_public, client_public, client_secret)

    def apply(self, socket: zmq.Socket) -> None:
        """Set before connect()."""
        socket.curve_serverkey = self.server_public
        socket.curve_publickey = self.client_public
        socket.curve_secretkey = self.client_secret


def create_key_pair(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Write NAME.key and NAME.key_secret (mode 0600); refuses to overwrite an existing pair."""
    out_dir = Path(out_dir)
    public, secret = out_dir / f"{name}.key", out_dir / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise ConfigError(f"{path} already exists; not overwriting a key")
    out_dir.mkdir(parents=True, exist_ok=True)
    public_file, secret_file = zmq.auth.create_certificates(out_dir, name)
    os.chmod(secret_file, 0o600)
    return Path(public_file), Path(secret_file)
