"""Shared fixtures: the shared data folder, free ports, a loopback RTSP server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
VIDEO = DATA / "video" / "people_1080p.mp4"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's Python, which has PyGObject for gst-rtsp-server


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA.is_dir(), f"shared test data not found at {DATA}"
    return DATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def looped_video(tmp_path_factory) -> Path:
    """The 4.2 s shared clip repeated 6 times (no re-encode), so a stream outlives a test's steps."""
    out = tmp_path_factory.mktemp("video") / "people_looped.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "5", "-i", str(VIDEO), "-c", "copy",
                    str(out)], check=True)
    return out


class RtspServer:
    def __init__(self, video: Path, port: int | None = None, path: str = "/test"):
        self.video, self.port, self.path = video, port or free_port(), path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self) -> "RtspServer":
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(REPO / "tests" / "rtsp_server.py"), "--port", str(self.port), "--file",
             str(self.video), "--path", self.path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()
        if line.strip() != "READY":
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r} {self.process.stderr.read()}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def rtsp_server(looped_video):
    for tool in ("ffmpeg", SYSTEM_PYTHON):
        assert shutil.which(tool), f"{tool} is required for the RTSP tests (see .ci/run)"
    server = RtspServer(looped_video).start()
    yield server
    server.stop()


def faceedge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", *args]


def wait_for(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
