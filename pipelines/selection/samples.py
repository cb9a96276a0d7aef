"""Labelled probes: made photo by photo, in worker processes or shards on several machines, merged into one set.

For every photo of the chosen identities that has another photo of its identity, `per_photo` probe
attempts (probes.py), each photo from its own seeded stream (`default_rng([seed, photo index])`), then
embedded and matched against the gallery (the clean faces of every photo) by the recogniser, all one photo
at a time. So a photo's probes, embeddings and labels are the same whichever process or shard makes them,
and shards merged in photo order give exactly the set one process gives. Shard i/n takes the photos
whose index is i modulo n; every shard builds the same gallery (detection of the clean photos is well
under 1 % of the work).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from faceedge.edge.errors import ConfigError
from faceedge.edge.recognize import EMBED_BATCH
from faceedge.pipelines.selection.labels import case_counts, four_case_labels, has_genuine_mate, match_gallery
from faceedge.pipelines.selection.probes import MIN_FACE, Probe, ProbeMaker


@dataclass
class ProbeBlock:
    """The probes one photo gave."""

    index: int  # the photo's index among the probe photos (its seed)
    probes: list[Probe]
    attempts: np.ndarray  # (n,) which attempt of the photo each probe is
    embeddings: np.ndarray  # (n, D)


@dataclass
class Gallery:
    embeddings: np.ndarray
    identities: list[str]
    sources: list[str]


@dataclass
class LabelledProbes:
    probes: list[Probe]
    labels: np.ndarray
    cases: np.ndarray
    genuine_similarity: np.ndarray
    top1_correct: np.ndarray
    photo_index: np.ndarray  # (N,) ProbeBlock.index of each probe
    attempts: np.ndarray
    embeddings: np.ndarray
    stats: dict = field(default_factory=dict)


def embed_with_progress(recognizer, faces: list[np.ndarray] | np.ndarray, desc: str) -> np.ndarray:
    """Embeddings of `faces` with a progress bar: thousands of faces take minutes on one thread."""
    return np.concatenate([recognizer.embed(np.stack(faces[i:i + EMBED_BATCH]))
                           for i in tqdm(range(0, len(faces), EMBED_BATCH), desc=desc, unit="batch")])


def make_gallery(records, recognizer) -> Gallery:
    embeddings = embed_with_progress(recognizer, [r.aligned for r in records], "gallery")
    return Gallery(embeddings, [r.identity for r in records], [str(r.path) for r in records])


def probe_records(records):
    """Records whose identity has another photo (a probe of a lone photo can never be right)."""
    ids, sources = [r.identity for r in records], [str(r.path) for r in records]
    mates = has_genuine_mate(ids, sources, ids, sources)
    return [r for r, ok in zip(records, mates) if ok]


class BlockMaker:
    """A photo -> its ProbeBlock: a detector, a recogniser and a probe maker of its own."""

    def __init__(self, recognizer: str, min_face: float = MIN_FACE):
        from faceedge.edge.detect import YuNetDetector
        from faceedge.edge.recognizers import open_recognizer

        self.recognizer = open_recognizer(recognizer)
        self.maker = ProbeMaker(YuNetDetector(threads=1), min_face=min_face)

    def __call__(self, index: int, record, per_photo: int, seed: int) -> ProbeBlock:
        image = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
        rng = np.random.default_rng([seed, index])
        probes, attempts = [], []
        for attempt in range(per_photo):
            probe = self.maker(image, record, rng)
            if probe is not None:
                probes.append(probe)
                attempts.append(attempt)
        embeddings = (self.recognizer.embed(np.stack([p.aligned for p in probes])) if probes
                      else np.empty((0, 0), np.float32))
        return ProbeBlock(index, probes, np.array(attempts, np.int64), embeddings)


_WORKER: dict = {}


def _start_worker(recognizer: str, min_face: float) -> None:
    _WORKER["maker"] = BlockMaker(recognizer, min_face)


def _worker_block(task) -> ProbeBlock:
    return _WORKER["maker"](*task)


def make_blocks(records, indices, recognizer: str, per_photo: int, seed: int, workers: int = 1,
                min_face: float = MIN_FACE, desc: str = "probes") -> list[ProbeBlock]:
    """ProbeBlocks of `records[i]` for i in `indices`, in that order, on `workers` processes."""
    # The gallery's faces are not needed to make probes; leaving them out keeps the tasks small.
    tasks = [(i, replace(records[i], aligned=None), per_photo, seed) for i in indices]
    bar = dict(total=len(tasks), desc=desc, unit="photo")
    if workers <= 1:
        maker = BlockMaker(recognizer, min_face)
        return [maker(*task) for task in tqdm(tasks, **bar)]
    with multiprocessing.get_context("spawn").Pool(workers, _start_worker, (recognizer, min_face)) as pool:
        return list(tqdm(pool.imap(_worker_block, tasks), **bar))


def label_blocks(blocks: list[ProbeBlock], gallery: Gallery, recognizer, threshold: float,
                 desc: str = "labelling") -> LabelledProbes:
    """Recognition-aware selection's four-case labels, one block at a time (a probe's numbers never
    depend on its neighbours)."""
    parts = []
    for block in tqdm([b for b in blocks if b.probes], desc=desc, unit="photo"):
        matches = match_gallery(block.embeddings, [p.identity for p in block.probes],
                                [p.source for p in block.probes], gallery.embeddings, gallery.identities,
                                gallery.sources, similarity=recognizer.similarity)
        parts.append((matches, block))
    probes = [p for _, b in parts for p in b.probes]

    def joined(values, empty):
        return np.concatenate(values) if values else empty

    similarity = joined([m.top1_similarity for m, _ in parts], np.empty(0))
    correct = joined([m.top1_correct.astype(bool) for m, _ in parts], np.empty(0, bool))
    labels, cases = four_case_labels(correct, similarity, threshold)
    labelled = LabelledProbes(
        probes, labels, cases, joined([m.genuine_similarity for m, _ in parts], np.empty(0)), correct,
        joined([np.full(len(b.probes), b.index) for _, b in parts], np.empty(0, np.int64)),
        joined([b.attempts for _, b in parts], np.empty(0, np.int64)),
        joined([b.embeddings for _, b in parts], np.empty((0, 0), np.float32)))
    labelled.stats = label_stats(labels, cases, threshold)
    return labelled


def label_stats(labels: np.ndarray, cases: np.ndarray, threshold: float) -> dict:
    return {"probes": len(labels), "positive_fraction": float(labels.mean()) if len(labels) else 0.0,
            "cases": case_counts(cases), "threshold": threshold}


def parse_shard(text: str | None) -> tuple[int, int]:
    """"i/n" -> (i, n); None -> (0, 1), the whole set."""
    if text is None:
        return 0, 1
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: need 0 <= i < n")
    return index, count


def build_samples(data: Path, identities: list[str], per_photo: int, seed: int, threshold: float, frontal,
                  recognizer, shard: tuple[int, int] = (0, 1), workers: int = 1) -> LabelledProbes:
    """The labelled probes of shard `shard` (i, n) of the probe photos of `identities` under `data`."""
    from faceedge.edge.detect import YuNetDetector
    from faceedge.pipelines.dataset import build_dataset

    records = build_dataset(data, YuNetDetector(threads=1), frontal=frontal, identities=identities)
    sources = probe_records(records)
    gallery = make_gallery(records, recognizer)
    index, count = shard
    blocks = make_blocks(sources, range(index, len(sources), count), recognizer.spec, per_photo, seed, workers,
                         desc=f"training probes (shard {index}/{count})" if count > 1 else "training probes")
    labelled = label_blocks(blocks, gallery, recognizer, threshold)
    labelled.stats.update(photos=len(records), probe_photos=len(blocks), attempts=len(blocks) * per_photo,
                          identities=sorted({r.identity for r in records}), shard=[index, count])
    return labelled


def save_samples(path: Path, labelled: LabelledProbes) -> None:
    _write(path, aligned=np.stack([p.aligned for p in labelled.probes]), labels=labelled.labels,
           cases=labelled.cases, identities=np.array([p.identity for p in labelled.probes]),
           genuine_similarity=labelled.genuine_similarity, photo_index=labelled.photo_index,
           attempts=labelled.attempts, stats=json.dumps(labelled.stats))


def _write(path: Path, **arrays) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def shard_path(out: Path, shard: tuple[int, int]) -> Path:
    return out / f"samples.shard-{shard[0]}-of-{shard[1]}.npz"


PER_PROBE = ("aligned", "labels", "cases", "identities", "genuine_similarity", "photo_index", "attempts")


def merge_shards(paths: list[Path], target: Path) -> dict:
    """Write the shards' probes as one sample set, in photo and attempt order; returns its stats."""
    parts = []
    for path in paths:
        with np.load(path) as data:
            missing = [key for key in PER_PROBE if key not in data.files]
            if missing:
                raise ConfigError(f"--merge-shards: {path} is not a shard of this version (lacks {missing})")
            parts.append(({key: data[key] for key in PER_PROBE}, json.loads(str(data["stats"]))))
    stats = [s for _, s in parts]
    counts = {s["shard"][1] for s in stats}
    got = sorted(s["shard"][0] for s in stats)
    if len(counts) != 1 or got != list(range(counts.pop())):
        raise ConfigError(f"--merge-shards: need every shard i/n exactly once, got {[s['shard'] for s in stats]}")
    if any(s.get("recipe") != stats[0].get("recipe") for s in stats):
        raise ConfigError("--merge-shards: the shards were made with different recipes "
                          f"({[s.get('recipe') for s in stats]})")
    merged = {key: np.concatenate([arrays[key] for arrays, _ in parts]) for key in PER_PROBE}
    order = np.lexsort((merged["attempts"], merged["photo_index"]))
    merged = {key: value[order] for key, value in merged.items()}
    total = label_stats(merged["labels"], merged["cases"], stats[0]["threshold"])
    total.update(photos=stats[0]["photos"], probe_photos=sum(s["probe_photos"] for s in stats),
                 attempts=sum(s["attempts"] for s in stats), identities=stats[0]["identities"], shard=[0, 1],
                 recipe=stats[0].get("recipe"))
    _write(target, **merged, stats=json.dumps(total))
    return total


@dataclass
class Samples:
    aligned: np.ndarray  # (N, 112, 112, 3) BGR
    labels: np.ndarray  # (N,) 0/1, recognition-aware selection's rule
    genuine_similarity: np.ndarray  # (N,) the recogniser's similarity to the probe's own identity
    stats: dict
    identities: np.ndarray | None = None  # (N,) whose face each probe is: the people of track-like groups


def load_samples(path: Path) -> Samples:
    with np.load(path) as data:
        if "photo_index" not in data.files:
            raise ConfigError(f"{path} was made by an older version (no photo order); use a new --out or delete it")
        return Samples(data["aligned"], data["labels"], data["genuine_similarity"], json.loads(str(data["stats"])),
                       data["identities"])


def subset(samples: Samples, keep: np.ndarray) -> Samples:
    """The probes where `keep` is true."""
    return Samples(samples.aligned[keep], samples.labels[keep], samples.genuine_similarity[keep], samples.stats,
                   None if samples.identities is None else samples.identities[keep])
