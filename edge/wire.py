"""The face message on the wire: multipart ZeroMQ frames, the schema they follow, and their checks.

Parts: [topic, metadata JSON, face JPEG, context JPEG] plus the original aligned face
JPEG as a 5th part when super-resolution restored the face. Topic: `face.<stream>`.
Shared by the publisher, subscribers, the spool and the relay, so it sits below all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

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
