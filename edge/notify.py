"""systemd's notification protocol (sd_notify) over a plain unix datagram socket.

With `Type=notify` systemd passes `NOTIFY_SOCKET` (a path, or '@name' for an abstract socket)
and, with `WatchdogSec=`, `WATCHDOG_USEC`. Outside systemd both are absent and every call is a
no-op. The watchdog is pinged at half its period and only while the pipeline reports itself
healthy, so systemd restarts a process whose main loop hangs or whose streams stay down.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("faceedge.notify")


class SystemdNotifier:
    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID, when set, names the process the watchdog is meant for.
        for_us = not watchdog_pid or watchdog_pid == str(os.getpid())
        self.ping_interval_s = int(watchdog_usec) / 2e6 if watchdog_usec.isdigit() and for_us else None
        self._socket = None
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._last_ping = 0.0
        self._last_status = ""

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def notify(self, *lines: str) -> bool:
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(lines).encode(), self.address)
            return True
        except OSError as exc:  # systemd gone or socket full: the service must not die of it
            log.debug("sd_notify %s: %s", lines, exc)
            return False

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def stopping(self, status: str = "stopping: publishing the best face of every live track") -> None:
        self.notify("STOPPING=1", f"STATUS={status}")

    def tick(self, health) -> None:
        """Call often from the main loop; `health()` -> Metrics.health(), evaluated only when a ping is due."""
        if self._socket is None or self.ping_interval_s is None:
            return
        now = time.monotonic()
        if now - self._last_ping < self.ping_interval_s:
            return
        report = health()
        states = [s["state"] for s in report["streams"].values()]
        status = f"{states.count('live')}/{len(states)} streams live"
        if not report["healthy"]:
            status += "; unhealthy: " + ", ".join(f"{name} {s['state']}" for name, s in report["streams"].items()
                                                  if s["state"] not in ("live", "connecting", "finished"))
        lines = ["WATCHDOG=1"] if report["healthy"] else []
        if status != self._last_status:
            lines.append(f"STATUS={status}")
            self._last_status = status
        if lines:
            self.notify(*lines)
        self._last_ping = now

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
