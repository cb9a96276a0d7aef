"""End to end: a real RTSP server on loopback -> `faceedge run` -> a real ZeroMQ subscriber
and a real scrape of /metrics; SIGTERM mid-stream still delivers every live track's best face."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request

import cv2
import jsonschema
import numpy as np
import pytest
import zmq

from faceedge.edge.detect import YuNetDetector
from faceedge.edge.wire import decode_message, load_schema

from conftest import REPO, faceedge_cmd, free_port, wait_for


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def metric(values: dict[str, float], name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return sum(v for k, v in values.items() if k.startswith(name + "{") and all(
        f'{k2}="{v2}"' in k for k2, v2 in labels.items())) if want else values.get(name, 0.0)


def decode_jpeg(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "part is not a decodable JPEG"
    return image


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_to_zeromq_with_metrics_and_sigterm(rtsp_server, transport, tmp_path):
    pub_port, metrics_port = free_port(), free_port()
    subscriber = zmq.Context.instance().socket(zmq.SUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"face.")
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.connect(f"tcp://127.0.0.1:{pub_port}")
    process = subprocess.Popen(
        faceedge_cmd("run", "--rtsp", rtsp_server.url, "--rtsp-transport", transport, "--stream-id", "door",
                     "--set", f"publish.bind=tcp://127.0.0.1:{pub_port}", "--set", "metrics.host=127.0.0.1",
                     "--set", f"metrics.port={metrics_port}", "--set", "publish.update_interval_s=0.5"),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    messages, received_at = [], []

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if subscriber.poll(100):
                messages.append(decode_message(subscriber.recv_multipart()))
                received_at.append(time.monotonic())

    try:
        # Run until several tracks have been published (best or update) and frames have flowed for a while.
        deadline = time.monotonic() + 90
        values: dict = {}
        while time.monotonic() < deadline and (len({m.meta["track_id"] for m in messages}) < 3 or metric(
                values, "faceedge_frames_processed_total", stream="door") <= 10):
            assert process.poll() is None, process.stdout.read()
            pump(0.5)
            try:
                values = scrape(metrics_port)
            except OSError:  # the metrics endpoint is not up yet
                values = {}
        assert metric(values, "faceedge_frames_decoded_total", stream="door") > 10
        assert metric(values, "faceedge_frames_processed_total", stream="door") > 10
        assert metric(values, "faceedge_faces_detected_total", stream="door") > 0
        assert metric(values, "faceedge_stage_seconds_count", stream="door", stage="detect") > 0
        assert metric(values, "faceedge_faces_published_total", stream="door") > 0
        live_before = metric(values, "faceedge_tracks_active", stream="door")
        # Wait until a track is live, then stop the process mid-stream.
        if live_before < 1:
            values = wait_for(lambda: (lambda v: v if metric(v, "faceedge_tracks_active", stream="door") >= 1
                                       else None)(scrape(metrics_port)), 30)
            assert values, "no live track to test SIGTERM with"
        sigterm_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        pump(3.0)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        subscriber.close()
    assert process.returncode == 0, output

    schema = load_schema()
    # A low threshold and upscaling: best faces include blurred and turned heads. A profile the
    # detector caught in the full frame can still escape it in a crop, so a few misses are allowed.
    detector = YuNetDetector(score_threshold=0.3)
    context_found = aligned_found = 0
    for message in messages:
        jsonschema.validate(message.meta, schema)
        assert message.topic == "face.door"
        face = decode_jpeg(message.face_jpeg)
        assert face.shape == (112, 112, 3)
        # A restored face always travels with the original it was restored from.
        assert (message.original_jpeg is not None) == message.meta["sr_applied"] == bool(message.meta["sr_model"])
        context = decode_jpeg(message.context_jpeg)
        scale = 320 / min(context.shape[:2])
        context_found += bool(detector.detect(cv2.resize(context, None, fx=scale, fy=scale)))
        padded = cv2.copyMakeBorder(cv2.resize(face, (224, 224)), 112, 112, 112, 112, cv2.BORDER_CONSTANT, value=0)
        aligned_found += bool(detector.detect(padded))
    assert context_found >= 0.8 * len(messages), f"only {context_found}/{len(messages)} context crops hold a face"
    assert aligned_found >= 0.7 * len(messages), f"only {aligned_found}/{len(messages)} aligned faces re-detected"

    best = [m for m in messages if m.meta["event"] == "best"]
    updated = {m.meta["track_id"] for m in messages if m.meta["event"] == "update"}
    assert len({m.meta["track_id"] for m in messages}) >= 3
    # Every track that was live (it sent updates) got its final best face, those still live at SIGTERM included.
    assert updated <= {m.meta["track_id"] for m in best}
    assert any(t > sigterm_at for t, m in zip(received_at, messages) if m.meta["event"] == "best")
    assert len({m.meta["track_id"] for m in best}) == len(best), "a track's best face was published twice"
