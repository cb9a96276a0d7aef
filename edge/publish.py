"""Publishing over ZeroMQ: one multipart message (`edge.wire`) per event.

The socket is XPUB with XPUB_NODROP, so a subscriber that falls behind its high-water
mark makes `send` fail instead of losing the message silently: the failure is counted.
"""

from __future__ import annotations

import logging

import zmq

from .errors import ConfigError

log = logging.getLogger("faceedge.publish")


class Publisher:
    """Owns the XPUB socket; use from one thread only (ZeroMQ sockets are not thread-safe)."""

    def __init__(self, bind: str, send_hwm: int = 1000, linger_s: float = 2.0, context: zmq.Context | None = None,
                 curve=None):
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.XPUB)
        self.curve = None
        if curve is not None and curve.enabled:  # a CurveConfig: encrypt, admit only allowed subscribers
            from .security import CurveServer

            try:
                self.curve = CurveServer(self.context, curve.server_secret_key, curve.allowed_clients_dir)
            except Exception:
                self.socket.close(0)
                raise
            self.curve.apply(self.socket)
        self.socket.setsockopt(zmq.SNDHWM, send_hwm)
        self.socket.setsockopt(zmq.XPUB_NODROP, 1)
        self.socket.setsockopt(zmq.LINGER, int(linger_s * 1000))
        try:
            self.socket.bind(bind)
        except zmq.ZMQError as exc:
            self.close()
            raise ConfigError(f"publish.bind {bind!r}: cannot bind: {exc}") from exc
        self.endpoint = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        log.info("publishing faces on %s", self.endpoint)

    def send(self, parts: list[bytes]) -> bool:
        """Send without blocking; False when a subscriber's queue is full (message not sent to it)."""
        self._drain_subscriptions()
        try:
            self.socket.send_multipart(parts, flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _drain_subscriptions(self) -> None:
        while self.socket.poll(0, zmq.POLLIN):
            self.socket.recv(zmq.NOBLOCK)

    def close(self) -> None:
        self.socket.close()
        if self.curve is not None:
            self.curve.stop()
