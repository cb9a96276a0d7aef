"""A loopback RTSP server for the tests and the soak benchmark: GStreamer's gst-rtsp-server in a child process.

The server script (`rtsp_server.py` beside this file) runs under Debian's Python, which has PyGObject;
this module only starts, kills and restarts it. Needs `ffmpeg` for `looped_copy`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from faceedge.edge.publish import free_port

SERVER_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's Python, which has PyGObject for gst-rtsp-server


def looped_copy(video: Path, out: Path, repeats: int) -> Path:
    """`video` played `repeats` + 1 times in one file, without re-encoding."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(repeats), "-i", str(video),
                    "-c", "copy", str(out)], check=True)
    return out


def missing_tools() -> list[str]:
    return [tool for tool in ("ffmpeg", SYSTEM_PYTHON) if not shutil.which(tool)]


class RtspServer:
    """Serves one H.264 MP4 at rtsp://127.0.0.1:PORT/PATH; every client gets its own copy from the start."""

    def __init__(self, video: Path, port: int | None = None, path: str = "/test"):
        self.video, self.port, self.path = video, port or free_port(), path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self) -> "RtspServer":
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--file", str(self.video),
             "--path", self.path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()
        if line.strip() != "READY":
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r} {self.process.stderr.read()}")
        return self

    def kill(self) -> None:
        """An abrupt outage: SIGKILL, as when a camera loses power (clients see their connection reset)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
