"""Fan-in of many faceedge publishers: one XSUB connected to every box's XPUB, one XPUB bound for
subscribers, `zmq.proxy` between them. Subscriptions travel up to the boxes and faces down, so a
box sends only what someone behind the relay asked for. Messages pass unchanged: each names its
`instance` and `stream`.

CURVE on either side where configured: towards the boxes the relay is a CURVE client (one
server key for every box, or one per box), towards subscribers a CURVE server with its own
allowed-clients folder (`edge.security`).
"""

from __future__ import annotations

import logging
import threading

import zmq

from .errors import ConfigError
from .security import CurveClientKeys, CurveServer

log = logging.getLogger("faceedge.relay")


class Relay:
    """`start()` runs the proxy in a thread; `stop()` ends it and closes the sockets."""

    def __init__(self, bind: str, upstreams: list[str], upstream_keys: list[CurveClientKeys | None] | None = None,
                 server_keys: tuple[str, str] | None = None, send_hwm: int = 1000,
                 context: zmq.Context | None = None):
        """`upstream_keys`: CURVE client keys per upstream (None: plain); `server_keys`: (secret key file,
        allowed clients folder) to make the subscriber side a CURVE server."""
        if not upstreams:
            raise ConfigError("relay: give at least one --connect endpoint")
        upstream_keys = upstream_keys or [None] * len(upstreams)
        if len(upstream_keys) != len(upstreams):
            raise ConfigError("relay: one CURVE server key for every box, or one per --connect")
        self.context = context or zmq.Context()
        self.server = None
        if server_keys is not None:
            self.server = CurveServer(self.context, *server_keys,
                                      names=("relay --curve-secret-key", "relay --curve-allowed-clients"))
        self.frontend = self.context.socket(zmq.XSUB)  # towards the boxes
        self.backend = self.context.socket(zmq.XPUB)  # towards the subscribers
        self._control = self.context.socket(zmq.PAIR)
        self._command = self.context.socket(zmq.PAIR)
        for socket in (self.frontend, self.backend, self._control, self._command):
            socket.setsockopt(zmq.LINGER, 0)
        # A box restarting comes back within 0.1 s (ZeroMQ's default) instead of its backoff growing.
        self.frontend.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        for endpoint, keys in zip(upstreams, upstream_keys):
            if keys is not None:  # options apply to the connections made after they are set
                keys.apply(self.frontend)
            self.frontend.connect(endpoint)
        if self.server is not None:
            self.server.apply(self.backend)
        self.backend.setsockopt(zmq.SNDHWM, send_hwm)
        try:
            self.backend.bind(bind)
        except zmq.ZMQError as exc:
            self.close()
            raise ConfigError(f"relay --bind {bind!r}: cannot bind: {exc}") from exc
        self.endpoint = self.backend.getsockopt(zmq.LAST_ENDPOINT).decode()
        control = f"inproc://relay-control-{id(self)}"
        self._control.bind(control)
        self._command.connect(control)
        self._thread = threading.Thread(target=self._proxy, name="relay", daemon=True)
        self.upstreams = list(upstreams)

    def _proxy(self) -> None:
        zmq.proxy_steerable(self.frontend, self.backend, None, self._control)

    def start(self) -> "Relay":
        self._thread.start()
        log.info("relaying %d publisher(s) (%s) to %s", len(self.upstreams), ", ".join(self.upstreams),
                 self.endpoint)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._command.send(b"TERMINATE")
            self._thread.join()
        self.close()

    def close(self) -> None:
        for socket in (self.frontend, self.backend, self._control, self._command):
            socket.close()
        if self.server is not None:
            self.server.stop()
