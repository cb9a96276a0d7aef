"""A ZeroMQ subscriber for faceedge messages: saves each face and appends its metadata."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import zmq

from .wire import MessageError, decode_message

log = logging.getLogger("faceedge.subscribe")


class FaceSaver:
    """Writes `<stream>_<track>_<event>_<n>.jpg` (+ `_context.jpg`, `_original.jpg`) and `faces.jsonl`."""

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def save(self, parts: list[bytes]) -> dict | None:
        try:
            message = decode_message(parts)
        except MessageError as exc:
            log.warning("skipping malformed message: %s", exc)
            return None
        meta = message.meta
        self.count += 1
        stem = f"{meta['stream']}_{meta['track_id']:05d}_{meta['event']}_{self.count:06d}"
        files = {"face": f"{stem}.jpg"}
        (self.out / files["face"]).write_bytes(message.face_jpeg)
        if message.context_jpeg:
            files["context"] = f"{stem}_context.jpg"
            (self.out / files["context"]).write_bytes(message.context_jpeg)
        if message.original_jpeg:
            files["original"] = f"{stem}_original.jpg"
            (self.out / files["original"]).write_bytes(message.original_jpeg)
        with open(self.out / "faces.jsonl", "a") as fh:
            fh.write(json.dumps(dict(meta, files=files)) + "\n")
        return meta


def connect(endpoint: str, topic: str = "face.", context: zmq.Context | None = None, curve=None) -> zmq.Socket:
    """`curve`: an `edge.security.CurveClientKeys` when the publisher has CURVE enabled."""
    socket = (context or zmq.Context.instance()).socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply(socket)
    socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
    socket.connect(endpoint)
    return socket


def receive(socket: zmq.Socket, saver: FaceSaver, timeout_s: float | None, limit: int | None = None,
            stop=None) -> int:
    """Save messages until `limit`, `timeout_s` of silence, or `stop()` turns true and what had
    already arrived is saved (the first quiet 0.2 s after it)."""
    saved = 0
    wait_ms = int((timeout_s if timeout_s is not None else 0.2) * 1000)
    while limit is None or saved < limit:
        stopping = stop is not None and stop()
        if not socket.poll(wait_ms):
            if timeout_s is not None or stopping:
                break
            continue
        if saver.save(socket.recv_multipart()) is not None:
            saved += 1
    return saved
