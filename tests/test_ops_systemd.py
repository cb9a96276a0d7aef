"""systemd integration: the sd_notify datagrams of a real `faceedge run`, and the unit file itself."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from faceedge.edge.notify import SystemdNotifier

from conftest import REPO, VIDEO, faceedge_cmd, free_port

UNIT = REPO / "config" / "faceedge.service"


def receive_all(sock: socket.socket, until, timeout: float) -> list[tuple[float, str]]:
    sock.settimeout(0.2)
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append((time.monotonic(), sock.recv(4096).decode()))
        except socket.timeout:
            if until():
                break
    return got


@pytest.mark.slow
def test_run_sends_ready_watchdog_and_stopping(tmp_path):
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        env = dict(os.environ, NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")  # a ping every 0.5 s
        process = subprocess.Popen(
            faceedge_cmd("run", "--input", str(VIDEO), "--realtime", "--set", "metrics.enabled=false",
                         "--set", f"publish.bind=tcp://127.0.0.1:{free_port()}"),
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            messages = receive_all(sock, lambda: process.poll() is not None, timeout=120)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, output
    lines = [line for _, text in messages for line in text.splitlines()]
    assert "READY=1" in lines, lines
    ready = lines.index("READY=1")
    stopping = lines.index("STOPPING=1")
    pings = [i for i, line in enumerate(lines) if line == "WATCHDOG=1"]
    # The clip plays for 4.2 s in real time: several pings at 0.5 s, all between READY and STOPPING.
    assert len(pings) >= 4, lines
    assert ready < pings[0] and pings[-1] < stopping
    assert any(re.match(r"STATUS=\d+/1 streams live", line) for line in lines), lines
    ping_times = [t for t, text in messages if "WATCHDOG=1" in text]
    gaps = [b - a for a, b in zip(ping_times, ping_times[1:])]
    assert min(gaps) >= 0.4, f"pings closer than half the watchdog period: {gaps}"


def test_notifier_abstract_socket_and_unhealthy_pipeline():
    name = f"faceedge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "2"})
        notifier.ready("1 stream(s) opening")
        assert sock.recv(4096) == b"READY=1\nSTATUS=1 stream(s) opening"
        healthy = {"healthy": True, "streams": {"door": {"state": "live", "last_error": ""}}}
        notifier.tick(lambda: healthy)
        assert sock.recv(4096) == b"WATCHDOG=1\nSTATUS=1/1 streams live"
        unhealthy = {"healthy": False, "streams": {"door": {"state": "retrying", "last_error": "refused"}}}
        time.sleep(0.01)
        notifier.tick(lambda: unhealthy)  # no WATCHDOG=1: systemd restarts us if this lasts WatchdogSec
        assert sock.recv(4096) == b"STATUS=0/1 streams live; unhealthy: door retrying"
        notifier.stopping()
        assert sock.recv(4096).startswith(b"STOPPING=1\n")
        notifier.close()
    # Outside systemd every call is a no-op.
    outside = SystemdNotifier({})
    assert not outside.enabled and outside.notify("READY=1") is False


def test_unit_file_verifies(tmp_path):
    text = UNIT.read_text()
    for directive in ("Type=notify", "WatchdogSec=30", "Restart=on-failure", "User=faceedge",
                      "ExecStart=/opt/faceedge/.venv/bin/faceedge run --config /etc/faceedge/faceedge.yaml",
                      "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
                      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"):
        assert directive in text, directive
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed (apt package systemd): unit syntax not verified")
    # The installed binary does not exist here: point ExecStart at one that does, keep everything else.
    unit = tmp_path / "faceedge.service"
    unit.write_text(text.replace("ExecStart=/opt/faceedge/.venv/bin/faceedge", "ExecStart=/bin/true"))
    result = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "faceedge.service" in line and "sysinit.target" not in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_prometheus_example_scrapes_faceedge():
    import yaml

    config = yaml.safe_load((REPO / "config" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "faceedge")
    assert job["scrape_interval"] == "15s"
    assert all(t.endswith(":9108") for c in job["static_configs"] for t in c["targets"])
