"""A clip under evaluation: its oracle scan, its people and how faces are attributed to them.

Synthetic clips attribute a face by its frame and box against the ground truth (IoU >= 0.4, the most visible
face first: synth.match_truth);
real clips by the nearest reference (top-1 SFace similarity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .judge import PersonTruth, Published
from .people import Reference, nearest
from .synth import ClipTruth, box_iou, match_truth
from .truth import ClipScan


@dataclass
class Clip:
    name: str  # file name, the key in the report
    stream: str  # stream id in the pipeline
    path: str
    scan: ClipScan
    references: dict[str, Reference]
    found: str  # how the people were found
    truth: ClipTruth | None = None
    people: list[PersonTruth] = field(default_factory=list)
    oracle_face: dict[str, int] = field(default_factory=dict)  # person -> index of the oracle's face in scan

    @property
    def synthetic(self) -> bool:
        return self.truth is not None

    def attribute(self, frame_index: int, bbox, embedding: np.ndarray) -> tuple[str | None, float]:
        """(person, similarity to their reference) of one face."""
        if self.truth is not None:
            frames = self.truth.frames
            who = match_truth(frames[frame_index], bbox) if 0 <= frame_index < len(frames) else None
            ref = self.references.get(who) if who is not None else None
            return (who, ref.similarity(embedding)) if ref is not None else (None, float("nan"))
        ref, sim = nearest(list(self.references.values()), embedding)
        return (ref.name, sim) if ref is not None else (None, float("nan"))

    def settle_people(self, threshold: float, min_face: float) -> None:
        """Each person's oracle similarity (best over every scanned face attributed to them, the
        medoid's own frame left out) and first visible frame."""
        best: dict[str, tuple[float, int]] = {}
        first: dict[str, int] = {}
        for index, face in enumerate(self.scan.faces):
            who, sim = self.attribute(face.frame_index, face.bbox, face.embedding)
            if who is None:
                continue
            if face.frame_index == self.references[who].medoid_frame:
                continue
            if sim > best.get(who, (-2.0, -1))[0]:
                best[who] = (sim, index)
            if not self.synthetic and sim >= threshold:
                first[who] = min(first.get(who, face.frame_index), face.frame_index)
        if self.synthetic:
            for index, faces in enumerate(self.truth.frames):
                for face in faces:
                    x1, y1, x2, y2 = face.box
                    if face.visibility >= 0.5 and min(x2 - x1, y2 - y1) >= min_face:
                        first.setdefault(face.identity, index)
            names = [name for name in self.truth.people if name in first]
        else:
            names = list(self.references)
        self.people = [PersonTruth(name, self.scan.frame_time(first[name]) if name in first else None,
                                   best[name][0] if name in best else None) for name in names]
        self.oracle_face = {name: best[name][1] for name in names if name in best}

    def tracks(self, offers) -> list[list[str | None]]:
        """Each confirmed track's offers on this clip's stream as identities (synthetic clips only).

        A track is one published track id: a tracker key split by the identity check carries on under a new id,
        and the offers a key took before its (next) id was given belong to that id.
        """
        by_track: dict = {}
        pending: dict = {}  # tracker key -> identities offered before the key's next id
        current: dict = {}  # tracker key -> its latest published id
        for offer in offers:
            if offer.track[0] != self.stream:
                continue
            identity = (match_truth(self.truth.frames[offer.frame_index], offer.bbox)
                        if offer.frame_index < len(self.truth.frames) else None)
            track_id = offer.track_id if offer.track_id is not None else current.get(offer.track)
            if track_id is None:
                pending.setdefault(offer.track, []).append(identity)
                continue
            current[offer.track] = track_id
            by_track.setdefault(track_id, []).extend(pending.pop(offer.track, []))
            by_track[track_id].append(identity)
        return list(by_track.values())

    def offered_best(self, offers) -> dict[str, float]:
        """Each person's best similarity among the faces the pipeline offered to a track on this stream: the
        ceiling of what any scorer could have published. An offer is the scanned face of its frame that
        overlaps it most (IoU >= 0.4)."""
        by_frame = self.scan.by_frame()
        best: dict[str, float] = {}
        for offer in offers:
            if offer.track[0] != self.stream:
                continue
            faces = by_frame.get(offer.frame_index, [])
            overlaps = [(box_iou(self.scan.faces[i].bbox, offer.bbox), i) for i in faces]
            iou, index = max(overlaps, default=(0.0, -1))
            if iou < 0.4:
                continue
            face = self.scan.faces[index]
            who, sim = self.attribute(face.frame_index, face.bbox, face.embedding)
            if who is not None and sim > best.get(who, -2.0):
                best[who] = sim
        return best

    def naive(self, period_s: float = 1.0) -> list[Published]:
        """No tracking: every `period_s` of stream time the largest face of that frame is published."""
        by_frame = self.scan.by_frame()
        pts = np.asarray(self.scan.frame_pts)
        published = []
        for tick in np.arange(pts[0] if len(pts) else 0.0, pts[-1] + 1e-9 if len(pts) else 0.0, period_s):
            frame = int(np.searchsorted(pts, tick - 1e-6))
            faces = by_frame.get(frame, [])
            if not faces:
                continue
            face = self.scan.faces[max(faces, key=lambda i: self.scan.faces[i].area)]
            who, sim = self.attribute(face.frame_index, face.bbox, face.embedding)
            published.append(Published(who, sim, float(tick)))
        return published

    def oracle(self) -> list[Published]:
        return [Published(p.name, p.oracle_similarity) for p in self.people if p.oracle_similarity is not None]
