"""Recognition-aware selection labels: a face is positive only when the recogniser both names it right and is sure.

Each probe's embedding is matched (by the recogniser's own similarity) against a gallery of the other
photos (never the probe's own source photo). Four cases: (top-1 identity correct, similarity >= threshold)
-> positive; correct but below threshold, wrong but above, wrong and below -> negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CASES = ("correct_confident", "correct_unsure", "wrong_confident", "wrong_unsure")


def four_case_labels(top1_correct: np.ndarray, similarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels 0/1, case index into CASES) for each probe."""
    correct = np.asarray(top1_correct, bool)
    confident = np.asarray(similarity) >= threshold
    case = np.where(correct, np.where(confident, 0, 1), np.where(confident, 2, 3))
    return (case == 0).astype(np.int64), case


@dataclass
class Matches:
    top1_identity: np.ndarray  # (N,) object
    top1_similarity: np.ndarray  # (N,)
    genuine_similarity: np.ndarray  # (N,) best similarity to the probe's own identity; -1 when none
    top1_correct: np.ndarray  # (N,) bool


def match_gallery(probe_embeddings: np.ndarray, probe_identities, probe_sources,
                  gallery_embeddings: np.ndarray, gallery_identities, gallery_sources, similarity=None) -> Matches:
    """Top-1 over the gallery, leaving out entries cut from the probe's own photo.

    `similarity(a, b)` is the recogniser's (higher is more alike); cosine of unit embeddings by default.
    """
    sims = probe_embeddings @ gallery_embeddings.T if similarity is None else similarity(probe_embeddings,
                                                                                         gallery_embeddings)
    same_photo = np.asarray(probe_sources)[:, None] == np.asarray(gallery_sources)[None, :]
    sims = np.where(same_photo, -np.inf, sims)
    best = sims.argmax(axis=1)
    gallery_identities = np.asarray(gallery_identities, dtype=object)
    probe_identities = np.asarray(probe_identities, dtype=object)
    top1_identity = gallery_identities[best]
    top1_similarity = sims[np.arange(len(best)), best]
    genuine = np.where(probe_identities[:, None] == gallery_identities[None, :], sims, -np.inf).max(axis=1)
    genuine = np.where(np.isfinite(genuine), genuine, -1.0)
    return Matches(top1_identity, top1_similarity, genuine, top1_identity == probe_identities)


def has_genuine_mate(probe_identities, probe_sources, gallery_identities, gallery_sources) -> np.ndarray:
    """Probes whose identity has at least one other photo in the gallery (others cannot be right)."""
    mates = {}
    for identity, source in zip(gallery_identities, gallery_sources):
        mates.setdefault(identity, set()).add(source)
    return np.array([bool(mates.get(i, set()) - {s}) for i, s in zip(probe_identities, probe_sources)])


def case_counts(case: np.ndarray) -> dict[str, int]:
    return {name: int((case == i).sum()) for i, name in enumerate(CASES)}
