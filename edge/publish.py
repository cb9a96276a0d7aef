"""Publishing over ZeroMQ: one multipart message per event.

Parts: [topic, metadata JSON, face JPEG, context JPEG] plus the original aligned face
JPEG as a 5th part when super-resolution restored the face. Topic: `face.<stream>`.
The socket is XPUB with XPUB_NODROP, so a subscriber that falls behind its high-water
mark makes `send` fail instead of losing the message silently: the failure is counted.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import zmq

from .errors import ConfigError

log = logging.getLogger("faceedge.publish")

SCHEMA = "faceedge.face/2"
SCHEMA_FILE = Path(__file__).parent / "schema" / "face.schema.json"


class MessageError(ValueError):
    """A received message is not a faceedge face message."""


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def encode_message(meta: dict, face: np.ndarray, context: np.ndarray | None, original: np.ndarray | None = None,
                   jpeg_quality: int = 90) -> list[bytes]:
    parts = [
        f"face.{meta['stream']}".encode(),
        json.dumps(meta, separators=(",", ":")).encode(),
        encode_jpeg(face, jpeg_quality),
        encode_jpeg(context, jpeg_quality) if context is not None and context.size else b"",
    ]
    if original is not None:
        parts.append(encode_jpeg(original, jpeg_quality))
    return parts


@dataclass
class FaceMessage:
    topic: str
    meta: dict
    face_jpeg: bytes
    context_jpeg: bytes
    original_jpeg: bytes | None = None


def decode_message(parts: list[bytes]) -> FaceMessage:
    """Parse and sanity-check a multipart message; raises MessageError naming the problem."""
    if len(parts) not in (4, 5):
        raise MessageError(f"expected 4 or 5 message parts, got {len(parts)}")
    try:
        topic = parts[0].decode()
        meta = json.loads(parts[1])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"metadata is not JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise MessageError(f"metadata schema is not {SCHEMA!r}")
    if topic != f"face.{meta.get('stream')}":
        raise MessageError(f"topic {topic!r} does not match stream {meta.get('stream')!r}")
    if not parts[2].startswith(b"\xff\xd8"):
        raise MessageError("face part is not a JPEG")
    return FaceMessage(topic, meta, parts[2], parts[3], parts[4] if len(parts) == 5 else None)


def load_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a loopback endpoint a subscriber must know before the bind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Publisher:
    """Owns the XPUB socket; use from one thread only (ZeroMQ sockets are not thread-safe)."""

    def __init__(self, bind: str, send_hwm: int = 1000, linger_s: float = 2.0, context: zmq.Context | None = None,
                 curve=None):
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.XPUB)
        self.curve = None
        if curve is not None and curve.enabled:  # a CurveConfig: encrypt, admit only allowed subscribers
            from .security import CurveServer

            try:
                self.curve = CurveServer(self.context, curve.server_secret_key, curve.allowed_clients_dir)
            except Exception:
                self.socket.close(0)
                raise
            self.curve.apply(self.socket)
        self.socket.setsockopt(zmq.SNDHWM, send_hwm)
        self.socket.setsockopt(zmq.XPUB_NODROP, 1)
        self.socket.setsockopt(zmq.LINGER, int(linger_s * 1000))
        try:
            self.socket.bind(bind)
        except zmq.ZMQError as exc:
            self.close()
            raise ConfigError(f"publish.bind {bind!r}: cannot bind: {exc}") from exc
        self.endpoint = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        log.info("publishing faces on %s", self.endpoint)

    def send(self, parts: list[bytes]) -> bool:
        """Send without blocking; False when a subscriber's queue is full (message not sent to it)."""
        self._drain_subscriptions()
        try:
            self.socket.send_multipart(parts, flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _drain_subscriptions(self) -> None:
        while self.socket.poll(0, zmq.POLLIN):
            self.socket.recv(zmq.NOBLOCK)

    def close(self) -> None:
        self.socket.close()
        if self.curve is not None:
            self.curve.stop()
