"""Shared fixtures: the shared data folder, free ports, a loopback RTSP server."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from testing_rtsp import RtspServer, free_port, looped_copy, missing_tools  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
VIDEO = DATA / "video" / "people_1080p.mp4"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA.is_dir(), f"shared test data not found at {DATA}"
    return DATA


@pytest.fixture(scope="session")
def looped_video(tmp_path_factory) -> Path:
    """The 4.2 s shared clip repeated 6 times (no re-encode), so a stream outlives a test's steps."""
    return looped_copy(VIDEO, tmp_path_factory.mktemp("video") / "people_looped.mp4", 5)


@pytest.fixture
def rtsp_server(looped_video):
    missing = missing_tools()
    assert not missing, f"{', '.join(missing)} needed for the RTSP tests (make system-deps)"
    server = RtspServer(looped_video).start()
    yield server
    server.stop()


def faceedge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "faceedge.edge.cli", *args]


def wait_for(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
