"""Faults survived, with real servers on loopback: a camera that dies and comes back, dead and wrong URLs,
a stream that stalls, several streams at once; credentials never leak."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import urllib.request

import zmq

from conftest import RtspServer, free_port
from faceedge.edge.config import load_config
from faceedge.edge.pipeline import Pipeline
from faceedge.edge.wire import decode_message


class Harness:
    """An in-process pipeline with a real subscriber and a real metrics endpoint."""

    def __init__(self, streams: list[dict], *overrides: str, metrics_port: int | None = None):
        self.pub_port, self.metrics_port = free_port(), metrics_port or free_port()
        self.config = load_config(None, [
            f"publish.bind=tcp://127.0.0.1:{self.pub_port}", "metrics.host=127.0.0.1",
            f"metrics.port={self.metrics_port}", "source.open_timeout_s=3", "source.read_timeout_s=2",
            "source.reconnect_initial_s=0.2", "source.reconnect_max_s=1", *overrides], {"streams": streams})
        self.subscriber = zmq.Context.instance().socket(zmq.SUB)
        self.subscriber.setsockopt(zmq.SUBSCRIBE, b"face.")
        self.subscriber.setsockopt(zmq.LINGER, 0)
        self.subscriber.connect(f"tcp://127.0.0.1:{self.pub_port}")
        self.messages: list = []
        self.pipeline = Pipeline(self.config)
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.status = self.pipeline.run()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.pipeline.stop()
        self.thread.join(30)
        self.pump(1.0)
        self.subscriber.close()

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.subscriber.poll(50):
                self.messages.append(decode_message(self.subscriber.recv_multipart()))

    def pump_until(self, predicate, timeout: float):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.2)
            if predicate():
                return True
        return False

    def state(self, stream: str) -> str:
        return self.pipeline.metrics.streams.get(stream, {}).get("state", "")

    def value(self, sample: str, stream: str) -> float:
        return self.pipeline.metrics.value(sample, stream=stream)

    def http(self, path: str) -> str:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5).read().decode()
        except urllib.error.HTTPError as error:  # /healthz answers 503 while a stream is down
            return error.read().decode()

    def published(self, stream: str, event: str = "best") -> list:
        return [m for m in self.messages if m.meta["stream"] == stream and m.meta["event"] == event]


def test_camera_restart_ends_tracks_cleanly_and_reconnects_fast(looped_video):
    server = RtspServer(looped_video).start()
    port = server.port
    try:
        with Harness([{"id": "cam", "url": server.url}], "publish.update_interval_s=0.5") as h:
            assert h.pump_until(lambda: h.value("faceedge_tracks_active", "cam") >= 1, 60)
            updated_before = {m.meta["track_id"] for m in h.published("cam", "update")}
            server.stop()
            assert h.pump_until(lambda: h.state("cam") == "retrying", 15), h.state("cam")
            h.pump(1.0)
            best_ids = {m.meta["track_id"] for m in h.published("cam")}
            # Every track that was live when the camera died ended with its best face.
            assert updated_before <= best_ids
            assert json.loads(h.http("/healthz"))["streams"]["cam"]["state"] == "retrying"

            published_during_outage = len(h.published("cam"))
            server = RtspServer(looped_video, port=port).start()
            returned = time.monotonic()
            assert h.pump_until(lambda: h.state("cam") == "live", 10)
            back_after = time.monotonic() - returned
            assert back_after < 5, f"stream back {back_after:.1f}s after the server"
            assert h.pump_until(lambda: len(h.published("cam")) > published_during_outage or any(
                m.meta["track_id"] not in best_ids for m in h.messages), 60), "no faces after the reconnect"
            assert h.value("faceedge_reconnects_total", "cam") >= 1
            new_ids = {m.meta["track_id"] for m in h.messages} - best_ids - updated_before
            assert new_ids and min(new_ids) > max(best_ids | updated_before), "track ids must not restart"
    finally:
        server.stop()


def test_bad_urls_stalls_and_credentials_never_stop_or_leak(looped_video, caplog):
    good = RtspServer(looped_video).start()
    stalled = RtspServer(looped_video).start()
    dead_port = free_port()
    secret_url = f"rtsp://viewer:s3cret@127.0.0.1:{good.port}/test"
    metrics_port = free_port()
    streams = [
        {"id": "good1", "url": secret_url},
        {"id": "good2", "url": good.url, "transport": "udp"},
        {"id": "refused", "url": f"rtsp://admin:s3cret@127.0.0.1:{dead_port}/x"},
        {"id": "missing", "url": f"rtsp://127.0.0.1:{good.port}/no-such-path"},
        {"id": "stalled", "url": stalled.url},
        {"id": "notvideo", "url": f"http://127.0.0.1:{metrics_port}/metrics"},  # a text page, not video
    ]
    caplog.set_level(logging.INFO)
    try:
        with Harness(streams, "publish.update_interval_s=0.5", metrics_port=metrics_port) as h:
            assert h.pump_until(lambda: h.state("stalled") == "live", 30)
            stalled.process.send_signal(signal.SIGSTOP)  # the camera stops sending packets, socket open
            assert h.pump_until(lambda: h.state("stalled") == "retrying", 20), "read timeout not detected"
            assert h.pump_until(lambda: len({m.meta["track_id"] for m in h.published("good1", "update")}) >= 2
                                and h.published("good2", "update"), 90), "healthy streams stalled"
            for bad in ("refused", "missing", "notvideo"):
                assert h.state(bad) == "retrying", (bad, h.state(bad))
                assert h.pipeline.metrics.streams[bad]["last_error"]
                assert h.value("faceedge_reconnects_total", bad) >= 1
            health, metrics_text = h.http("/healthz"), h.http("/metrics")
            live_updates = {(m.meta["stream"], m.meta["track_id"]) for m in h.messages if m.meta["event"] == "update"}
        # Stopped with live tracks on two streams: each of their tracks got its best face.
        best = {(m.meta["stream"], m.meta["track_id"]) for m in h.messages if m.meta["event"] == "best"}
        assert live_updates <= best
        assert h.status == 0, "streams that were retrying when stopped are not failures"
        everything = "\n".join([caplog.text, health, metrics_text, *(json.dumps(m.meta) for m in h.messages)])
        assert "s3cret" not in everything and "viewer" not in everything
        assert "rtsp://***@127.0.0.1" in caplog.text
    finally:
        stalled.process.send_signal(signal.SIGCONT)
        good.stop()
        stalled.stop()
