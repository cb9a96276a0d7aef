"""Who is in a clip: gallery folders, or clusters of the clip's own faces.

A `Reference` is one person: embeddings to compare against (gallery photos, or a cluster's
medoid) and, for a medoid, the frame it came from (that frame is left out of the person's oracle,
since the medoid matches itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceedge.edge.align import align_face
from faceedge.pipelines.dataset import _images, identity_folders, largest_face


@dataclass
class Reference:
    name: str
    embeddings: np.ndarray  # (k, 128), L2-normalised
    face: np.ndarray | None = None  # an aligned face to show on the sheet
    medoid_frame: int | None = None
    frames_seen: int = 0

    def similarity(self, embedding: np.ndarray) -> float:
        return float(np.max(self.embeddings @ embedding))


@dataclass
class FoundPeople:
    references: list[Reference]
    rule: str  # how they were found, for the report
    clusters: int = 0  # before the size rule
    dropped: list[int] = field(default_factory=list)  # frames seen by each dropped cluster


def gallery_people(folder: Path, detector, recognizer) -> FoundPeople:
    refs = []
    for person in identity_folders(folder):
        faces = []
        for path in _images(person):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            det = largest_face(detector.detect(image)) if image is not None else None
            if det is not None:
                faces.append(align_face(image, det.landmarks))
        if faces:
            refs.append(Reference(person.name, recognizer.embed(faces), faces[0]))
    return FoundPeople(refs, f"gallery {folder}: one folder of photos per person ({len(refs)} with a face)")


def cluster_people(embeddings: np.ndarray, frames: np.ndarray, aligned: list[np.ndarray], threshold: float,
                   min_frames: int, min_share: float) -> FoundPeople:
    """Average-linkage clusters of every detected face, cut at cosine distance 1 - threshold.

    A cluster is a person when it is seen in at least max(min_frames, min_share x the frames
    with any face) distinct frames; its medoid (highest mean similarity to the rest) is the reference.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    rule = (f"clusters of all detected faces (SFace, average linkage, cut at cosine distance {1 - threshold:.3f}) "
            f"seen in >= max({min_frames}, {min_share:.0%} of frames with a face) frames; medoid = reference")
    if len(embeddings) == 0:
        return FoundPeople([], rule)
    labels = (fcluster(linkage(pdist(embeddings, "cosine"), "average"), 1 - threshold, "distance")
              if len(embeddings) > 1 else np.ones(1, int))
    need = max(min_frames, int(np.ceil(min_share * len(set(frames.tolist())))))
    refs, dropped = [], []
    for label in sorted(set(labels.tolist()), key=lambda lab: -int((labels == lab).sum())):
        members = np.nonzero(labels == label)[0]
        seen = len(set(frames[members].tolist()))
        if seen < need:
            dropped.append(seen)
            continue
        sims = embeddings[members] @ embeddings[members].T
        medoid = members[int(np.argmax(sims.mean(axis=1)))]
        refs.append(Reference(f"person_{len(refs) + 1}", embeddings[medoid][None], aligned[medoid],
                              int(frames[medoid]), seen))
    return FoundPeople(refs, rule + f" (here {need} frames)", len(set(labels.tolist())), dropped)


def nearest(references: list[Reference], embedding: np.ndarray) -> tuple[Reference | None, float]:
    """Top-1 reference and its similarity."""
    best, best_sim = None, -2.0
    for ref in references:
        sim = ref.similarity(embedding)
        if sim > best_sim:
            best, best_sim = ref, sim
    return best, best_sim
