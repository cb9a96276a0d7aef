"""Two faceedge processes fanned in through `faceedge relay` to one subscriber, over loopback."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
import zmq

from conftest import VIDEO, faceedge_cmd, free_port
from faceedge.edge.cli import main
from faceedge.edge.config import CurveConfig
from faceedge.edge.publish import Publisher
from faceedge.edge.wire import SCHEMA, decode_message, encode_message
from faceedge.edge.relay import Relay
from faceedge.edge.security import CurveClientKeys
from faceedge.edge.spool import read_spool
from faceedge.edge.subscribe import connect


def received_until(socket: zmq.Socket, done, quiet_s: float = 1.5) -> list[dict]:
    """Messages until `done()` and then `quiet_s` without one."""
    messages, quiet_since = [], None
    while True:
        if socket.poll(100):
            messages.append(decode_message(socket.recv_multipart()).meta)
            quiet_since = None
            continue
        if done():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_s:
                return messages


@pytest.mark.slow
def test_every_best_face_of_two_boxes_arrives_exactly_once_through_the_relay(tmp_path):
    boxes = {"box-a": free_port(), "box-b": free_port()}
    relay_port = free_port()
    relay = subprocess.Popen(faceedge_cmd("relay", "--bind", f"tcp://127.0.0.1:{relay_port}",
                                          *[arg for port in boxes.values()
                                            for arg in ("--connect", f"tcp://127.0.0.1:{port}")]))
    context = zmq.Context()
    subscriber = connect(f"tcp://127.0.0.1:{relay_port}", context=context)
    runs = []
    try:
        time.sleep(1.0)  # the relay is up and holds the subscription before any box publishes
        for instance, port in boxes.items():
            runs.append(subprocess.Popen(faceedge_cmd(
                "run", "--input", str(VIDEO), "--realtime", "--set", f"publish.bind=tcp://127.0.0.1:{port}",
                "--set", f"publish.instance={instance}", "--set", "metrics.enabled=false",
                "--set", "detect.input_size=320", "--set", "publish.spool.enabled=true",
                "--set", f"publish.spool.dir={tmp_path / instance}")))
        messages = received_until(subscriber, lambda: all(run.poll() is not None for run in runs))
        assert [run.returncode for run in runs] == [0, 0]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(10) == 0
        subscriber.close()
        context.term()
    sent = sorted((meta["instance"], meta["stream"], meta["track_id"], meta["event"])
                  for instance in boxes for meta, _ in read_spool(tmp_path / instance))
    got = sorted((meta["instance"], meta["stream"], meta["track_id"], meta["event"]) for meta in messages)
    assert {instance for instance, *_ in sent} == set(boxes)  # both boxes published best faces
    assert all(event == "best" for *_, event in sent)
    assert got == sent  # every one arrived, none twice


def test_relay_with_curve_on_both_sides_passes_faces_only_to_allowed_subscribers(tmp_path):
    for name in ("box", "relay", "viewer"):
        assert main(["keys", "--out", str(tmp_path), "--name", name]) == 0
    (tmp_path / "box-clients").mkdir()
    (tmp_path / "box-clients" / "relay.key").write_bytes((tmp_path / "relay.key").read_bytes())
    (tmp_path / "relay-clients").mkdir()
    (tmp_path / "relay-clients" / "viewer.key").write_bytes((tmp_path / "viewer.key").read_bytes())
    context = zmq.Context()
    box_port, relay_port = free_port(), free_port()
    box = Publisher(f"tcp://127.0.0.1:{box_port}", context=context, curve=CurveConfig(
        enabled=True, server_secret_key=str(tmp_path / "box.key_secret"),
        allowed_clients_dir=str(tmp_path / "box-clients")))
    relay = Relay(f"tcp://127.0.0.1:{relay_port}", [f"tcp://127.0.0.1:{box_port}"],
                  [CurveClientKeys.from_files(tmp_path / "box.key", tmp_path / "relay.key_secret")],
                  (str(tmp_path / "relay.key_secret"), str(tmp_path / "relay-clients"))).start()
    viewer = connect(f"tcp://127.0.0.1:{relay_port}", context=context,
                     curve=CurveClientKeys.from_files(tmp_path / "relay.key", tmp_path / "viewer.key_secret"))
    plain = connect(f"tcp://127.0.0.1:{relay_port}", context=context)
    face = np.zeros((112, 112, 3), np.uint8)
    try:
        got = None
        for n in range(50):  # until the subscription has travelled viewer -> relay -> box
            box.send(encode_message({"schema": SCHEMA, "instance": "box", "event": "best",
                                     "stream": "door", "track_id": n + 1}, face, face))
            if viewer.poll(100):
                got = decode_message(viewer.recv_multipart()).meta
                break
        assert got is not None and got["instance"] == "box" and got["stream"] == "door"
        assert not plain.poll(500), "a subscriber without keys received a face"
    finally:
        viewer.close()
        plain.close()
        relay.stop()
        box.close()
        context.term()


def test_relay_cli_refuses_mismatched_curve_options_with_exit_2(tmp_path, caplog):
    for name in ("box", "relay"):
        assert main(["keys", "--out", str(tmp_path), "--name", name]) == 0
    two_boxes = ["relay", "--bind", f"tcp://127.0.0.1:{free_port()}", "--connect", "tcp://127.0.0.1:1",
                 "--connect", "tcp://127.0.0.1:2"]
    box_key, relay_secret = str(tmp_path / "box.key"), str(tmp_path / "relay.key_secret")
    assert main([*two_boxes, "--curve-server-key", box_key]) == 2
    assert "--curve-client-key" in caplog.text
    three_keys = [arg for _ in range(3) for arg in ("--curve-server-key", box_key)]
    assert main([*two_boxes, *three_keys, "--curve-client-key", relay_secret]) == 2
    assert "3 --curve-server-key for 2 --connect" in caplog.text
    assert main([*two_boxes, "--curve-secret-key", relay_secret]) == 2
    assert "--curve-allowed-clients" in caplog.text
    assert main([*two_boxes, "--curve-secret-key", relay_secret, "--curve-allowed-clients",
                 str(tmp_path / "missing")]) == 2
    assert "relay --curve-allowed-clients" in caplog.text and "folder not found" in caplog.text
