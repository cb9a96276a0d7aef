"""The one place a published face's message is made: schema `wire.SCHEMA`, from a track's best face.

`face_message` is called when the publish decision is taken, on the worker thread, so the metadata
is that moment's (the track goes on changing its `BestFace`); the publisher thread then encodes it
with the enhanced images (`OutgoingFace.encode`), which is when `sr_applied` and `sr_model` are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .face_quality import face_quality
from .wire import SCHEMA, encode_message
from .select import BestFace, Candidate, Scorer

if TYPE_CHECKING:
    from .enhance import Enhanced


@dataclass
class OutgoingFace:
    """A face on its way to the publisher: its metadata and the candidate its images come from."""

    meta: dict
    candidate: Candidate

    def encode(self, enhanced: Enhanced, jpeg_quality: int) -> list[bytes]:
        """The multipart message, with the face and context as `enhanced` (of `candidate`) made them."""
        meta = dict(self.meta, sr_applied=enhanced.sr_applied, sr_model=enhanced.model)
        original = enhanced.original_face if enhanced.sr_applied else None
        return encode_message(meta, enhanced.face, enhanced.context, original, jpeg_quality)


def face_message(best: BestFace, event: str, *, stream: str, track_id: int, instance: str,
                 scorer: Scorer) -> OutgoingFace:
    """The message of `event` ('early', 'update' or 'best') for the track's chosen face, `best.candidate`."""
    cand = best.candidate
    det = cand.detection
    meta = {
        "schema": SCHEMA,
        "instance": instance,
        "event": event,
        "stream": stream,
        "track_id": track_id,
        "frame_index": cand.frame_index,
        "pts_s": cand.pts_s,
        "wall_time": datetime.fromtimestamp(cand.wall, timezone.utc).isoformat(),
        "bbox": [round(float(v), 1) for v in det.bbox],
        "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in det.landmarks],
        "det_score": round(float(det.score), 4),
        "score": round(float(best.score), 6),
        "scorer": scorer_meta(scorer),
        "sr_applied": False,  # until `encode`: enhancement runs on the publisher thread
        "sr_model": None,
        "edge_rejected": best.rejected,
        "frames_seen": best.frames_seen,
        "track_duration_s": round(best.duration_s, 3),
        "quality": face_quality(cand, best.score),
    }
    return OutgoingFace(meta, cand)


def scorer_meta(scorer: Scorer) -> dict:
    """The scorer's name and version, and the recogniser a learned one was trained for when its model says."""
    meta = {"name": scorer.name, "version": scorer.version}
    trained_for = getattr(scorer, "trained_for", None)
    if trained_for:
        meta["trained_for"] = trained_for
    return meta
