"""ZeroMQ CURVE with real sockets: only subscribers whose public key is allowed receive faces."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import zmq

from faceedge.edge.cli import main
from faceedge.edge.config import CurveConfig, load_config
from faceedge.edge.errors import ConfigError
from faceedge.edge.publish import Publisher
from faceedge.edge.wire import decode_message, encode_message
from faceedge.edge.security import CurveClientKeys
from faceedge.edge.spool import read_spool
from faceedge.edge.subscribe import connect

from conftest import VIDEO, free_port


@pytest.fixture
def keys(tmp_path):
    """server pair, one allowed client ('cam-viewer') and one client whose key is not allowed ('intruder')."""
    allowed = tmp_path / "allowed"
    for name, out in (("server", tmp_path), ("viewer", tmp_path), ("intruder", tmp_path)):
        assert main(["keys", "--out", str(out), "--name", name]) == 0
    allowed.mkdir()
    (allowed / "viewer.key").write_bytes((tmp_path / "viewer.key").read_bytes())
    return tmp_path


def curve_config(keys) -> CurveConfig:
    return CurveConfig(enabled=True, server_secret_key=str(keys / "server.key_secret"),
                       allowed_clients_dir=str(keys / "allowed"))


def face_parts(n: int) -> list[bytes]:
    face = np.full((112, 112, 3), n % 255, np.uint8)
    meta = {"schema": "faceedge.face/2", "event": "best", "stream": "door", "track_id": n}
    return encode_message(meta, face, face)


def client(keys, name: str) -> CurveClientKeys:
    return CurveClientKeys.from_files(keys / "server.key", keys / f"{name}.key_secret")


def test_only_allowed_subscriber_receives(keys):
    port = free_port()
    context = zmq.Context()
    publisher = Publisher(f"tcp://127.0.0.1:{port}", context=context, curve=curve_config(keys))
    endpoint = f"tcp://127.0.0.1:{port}"
    subscribers = {
        "allowed": connect(endpoint, context=context, curve=client(keys, "viewer")),
        "key not allowed": connect(endpoint, context=context, curve=client(keys, "intruder")),
        "no keys": connect(endpoint, context=context),
        # The right client key but a wrong idea of the server's key: the handshake fails.
        "wrong server key": connect(endpoint, context=context, curve=CurveClientKeys.from_files(
            keys / "intruder.key", keys / "viewer.key_secret")),
    }
    received = {name: [] for name in subscribers}
    try:
        deadline = time.monotonic() + 4
        sent = 0
        while time.monotonic() < deadline:
            publisher.send(face_parts(sent))
            sent += 1
            for name, socket in subscribers.items():
                while socket.poll(0):
                    received[name].append(decode_message(socket.recv_multipart()))
            time.sleep(0.02)
    finally:
        for socket in subscribers.values():
            socket.close(0)
        publisher.close()
        context.term()
    assert len(received["allowed"]) > 10, f"allowed subscriber got {len(received['allowed'])} of {sent}"
    assert all(m.meta["stream"] == "door" for m in received["allowed"])
    assert received["key not allowed"] == []
    assert received["no keys"] == []
    assert received["wrong server key"] == []


def test_key_files_are_checked_and_named(keys, tmp_path):
    corrupt = tmp_path / "corrupt.key_secret"
    corrupt.write_text('curve\n    public-key = "tooshort"\n    secret-key = "alsoshort"\n')
    out_of_range = tmp_path / "range.key_secret"  # 40 Z85 characters that decode to no 32-byte key
    out_of_range.write_text(f'curve\n    public-key = "{"#" * 40}"\n    secret-key = "{"#" * 40}"\n')
    cases = {
        str(out_of_range): "range.key_secret",
        str(tmp_path / "missing.key_secret"): "missing.key_secret",
        str(corrupt): "corrupt.key_secret",
        str(keys / "server.key"): "server.key",  # a public key file where a secret key is needed
    }
    for path, name in cases.items():
        cfg = CurveConfig(enabled=True, server_secret_key=path, allowed_clients_dir=str(keys / "allowed"))
        with pytest.raises(ConfigError, match=name):
            Publisher(f"tcp://127.0.0.1:{free_port()}", context=zmq.Context.instance(), curve=cfg)
    (keys / "allowed" / "broken.key").write_text("not a certificate")
    with pytest.raises(ConfigError, match="broken.key"):
        Publisher(f"tcp://127.0.0.1:{free_port()}", curve=curve_config(keys))
    with pytest.raises(ConfigError, match="nope.key"):
        CurveClientKeys.from_files(keys / "nope.key", keys / "viewer.key_secret")


def test_keys_command_refuses_to_overwrite(keys):
    assert main(["keys", "--out", str(keys), "--name", "server"]) == 2
    assert (keys / "server.key_secret").stat().st_mode & 0o077 == 0


def test_cli_exits_2_naming_a_missing_key(tmp_path, caplog):
    missing = tmp_path / "absent.key_secret"
    code = main(["run", "--input", str(VIDEO), "--set", "metrics.enabled=false",
                 "--set", f"publish.bind=tcp://127.0.0.1:{free_port()}", "--set", "publish.curve.enabled=true",
                 "--set", f"publish.curve.server_secret_key={missing}",
                 "--set", f"publish.curve.allowed_clients_dir={tmp_path}"])
    assert code == 2
    assert str(missing) in caplog.text


def test_pipeline_with_curve_and_spool(keys, tmp_path):
    """The real pipeline on the shared clip: the allowed subscriber gets faces, the other none; all are spooled."""
    from faceedge.edge.pipeline import Pipeline

    port = free_port()
    spool_dir = tmp_path / "spool"
    config = load_config(None, [
        f"publish.bind=tcp://127.0.0.1:{port}", "metrics.enabled=false",
        "publish.curve.enabled=true", f"publish.curve.server_secret_key={keys / 'server.key_secret'}",
        f"publish.curve.allowed_clients_dir={keys / 'allowed'}",
        "publish.spool.enabled=true", f"publish.spool.dir={spool_dir}",
    ], {"streams": [{"id": "people", "url": str(VIDEO)}]})
    pipeline = Pipeline(config)
    context = zmq.Context()
    endpoint = f"tcp://127.0.0.1:{port}"
    allowed = connect(endpoint, context=context, curve=client(keys, "viewer"))
    intruder = connect(endpoint, context=context, curve=client(keys, "intruder"))
    received = {"allowed": [], "intruder": []}
    done = threading.Event()

    def listen():
        while not done.is_set() or allowed.poll(500) or intruder.poll(0):
            for name, socket in (("allowed", allowed), ("intruder", intruder)):
                while socket.poll(50):
                    received[name].append(decode_message(socket.recv_multipart()))

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        assert pipeline.run() == 0
    finally:
        done.set()
        listener.join(10)
        allowed.close(0)
        intruder.close(0)
        context.term()
    published = pipeline.metrics.published("people")
    spooled = list(read_spool(spool_dir))
    assert published >= 1
    assert len(spooled) == published, "every published face is in the spool"
    assert len(received["allowed"]) >= 1
    assert {m.meta["track_id"] for m in received["allowed"]} <= {meta["track_id"] for meta, _ in spooled}
    assert received["intruder"] == []


def test_subscribe_cli_key_errors(keys, tmp_path, caplog):
    out = str(tmp_path / "faces")
    assert main(["subscribe", "tcp://127.0.0.1:9", "--out", out, "--curve-server-key", str(keys / "server.key")]) == 2
    missing = tmp_path / "gone.key_secret"
    assert main(["subscribe", "tcp://127.0.0.1:9", "--out", out, "--curve-server-key", str(keys / "server.key"),
                 "--curve-client-key", str(missing)]) == 2
    assert str(missing) in caplog.text
