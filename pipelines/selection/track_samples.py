"""Track samples: the faces of synthetic labelled streams of training identities, as the pipeline sees them.

The stream benchmark's own generator (`stream_eval.synth`) makes clips of training identities only; each clip
is decoded and scanned as the benchmark's oracle scans it (`stream_eval.truth`: detector resolution, the
pipeline's detector settings, alignment from the full frame). Every scanned face the ground truth names is a
sample. Its genuine similarity is the recogniser's to the person's enrolment photo, which the clip never shows;
its label is the four-case rule (labels.py) against the enrolment photos of every person in the clips. So the
model sees the views a track offers (sizes, turns, blur, compression, occlusion) with the recogniser's own
verdict on each.

Clips are scanned one per task on `workers` processes; a clip's samples depend only on the clip.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from faceedge.edge.align import align_face
from faceedge.edge.config import load_config
from faceedge.pipelines.selection.labels import case_counts, four_case_labels
from faceedge.pipelines.selection.samples import Samples, _write
from faceedge.pipelines.stream_eval.synth import ClipTruth, load_people, make_clips, match_truth
from faceedge.pipelines.stream_eval.truth import scan_clip


@dataclass(frozen=True)
class TrackRecipe:
    people: int = 120
    clips: int = 36
    seconds: float = 8.0
    seed: int = 100


@dataclass
class ClipFaces:
    """The named faces of one clip."""

    aligned: np.ndarray  # (n, 112, 112, 3)
    identities: list[str]
    embeddings: np.ndarray  # (n, D)
    stats: dict = field(default_factory=dict)


def _detector():
    from faceedge.edge.pipeline import make_detector

    config = load_config(None)
    return make_detector(config), config.detect.input_size, config.detect.min_face


class ClipScanner:
    """A clip's truth -> its named faces, with a detector and a recogniser of its own."""

    def __init__(self, recognizer: str):
        from faceedge.edge.recognizers import open_recognizer

        self.detector, self.input_size, self.min_face = _detector()
        self.recognizer = open_recognizer(recognizer)

    def __call__(self, truth: ClipTruth) -> ClipFaces:
        scan = scan_clip(truth.path, self.detector, self.recognizer, self.input_size, self.min_face,
                         desc=Path(truth.path).name)
        keep = [(i, who) for i, face in enumerate(scan.faces)
                if (who := match_truth(truth.frames[face.frame_index], face.bbox)) is not None]
        aligned = np.stack([scan.aligned[i] for i, _ in keep]) if keep else np.empty((0, 112, 112, 3), np.uint8)
        embeddings = np.stack([scan.faces[i].embedding for i, _ in keep]) if keep else np.empty((0, 0), np.float32)
        return ClipFaces(aligned, [who for _, who in keep], embeddings,
                         {"frames": len(scan.frame_pts), "faces": len(scan.faces), "named": len(keep)})


_WORKER: dict = {}


def _start_worker(recognizer: str) -> None:
    _WORKER["scanner"] = ClipScanner(recognizer)


def _scan(truth: ClipTruth) -> ClipFaces:
    return _WORKER["scanner"](truth)


def enrolment_embeddings(people, detector, recognizer) -> dict[str, np.ndarray]:
    """Each person's enrolment photo (kept out of the clips), aligned as the benchmark aligns it, embedded."""
    out = {}
    for person in people:
        image = cv2.imread(person.gallery.path, cv2.IMREAD_COLOR)
        det = max(detector.detect(image), key=lambda d: d.size)
        out[person.identity] = recognizer.embed(np.stack([align_face(image, det.landmarks)]))[0]
    return out


def make_track_samples(data: Path, identities: list[str], recipe: TrackRecipe, recognizer, threshold: float,
                       work: Path, workers: int = 1) -> Samples:
    """Labelled faces of `recipe.clips` synthetic clips of up to `recipe.people` of `identities`."""
    detector, _, _ = _detector()
    people = load_people(data, identities, recipe.people, detector, recipe.seed)
    truths = make_clips(people, work, recipe.seed, recipe.clips, recipe.seconds)
    enrolled = enrolment_embeddings(people, detector, recognizer)
    bar = dict(total=len(truths), desc="track clips", unit="clip")
    if workers <= 1:
        scanner = ClipScanner(recognizer.spec)
        scanned = [scanner(truth) for truth in tqdm(truths, **bar)]
    else:
        with multiprocessing.get_context("spawn").Pool(workers, _start_worker, (recognizer.spec,)) as pool:
            scanned = list(tqdm(pool.imap(_scan, truths), **bar))
    return label_track_faces(scanned, enrolled, recognizer, threshold,
                             {"people": len(people), "clips": len(truths), "seconds": recipe.seconds,
                              "seed": recipe.seed, "per_clip": [c.stats for c in scanned]})


def label_track_faces(scanned: list[ClipFaces], enrolled: dict[str, np.ndarray], recognizer, threshold: float,
                      stats: dict) -> Samples:
    """Four-case labels of every named face against all enrolment photos; genuine = to the face's own."""
    names = list(enrolled)
    gallery = np.stack([enrolled[n] for n in names])
    faces = [c for c in scanned if len(c.identities)]
    aligned = np.concatenate([c.aligned for c in faces]) if faces else np.empty((0, 112, 112, 3), np.uint8)
    identities = np.array([who for c in faces for who in c.identities])
    if not faces:
        return Samples(aligned, np.empty(0, np.int64), np.empty(0), {**stats, "probes": 0}, identities)
    sims = recognizer.similarity(np.concatenate([c.embeddings for c in faces]), gallery)
    own = np.array([names.index(who) for who in identities])
    genuine = sims[np.arange(len(own)), own]
    labels, cases = four_case_labels(sims.argmax(axis=1) == own, sims.max(axis=1), threshold)
    stats = {**stats, "probes": len(labels), "positive_fraction": float(labels.mean()), "cases": case_counts(cases),
             "threshold": threshold}
    return Samples(aligned, labels, genuine.astype(np.float64), stats, identities)


def save_track_samples(path: Path, samples: Samples) -> None:
    import json

    _write(path, aligned=samples.aligned, labels=samples.labels, genuine_similarity=samples.genuine_similarity,
           identities=samples.identities, stats=json.dumps(samples.stats))


def load_track_samples(path: Path) -> Samples:
    import json

    with np.load(path) as data:
        return Samples(data["aligned"], data["labels"], data["genuine_similarity"], json.loads(str(data["stats"])),
                       data["identities"])


def joined(probes: Samples, tracks: Samples) -> Samples:
    """The probes and the track samples as one training set (the probes' stats, which hold the threshold)."""
    return Samples(np.concatenate([probes.aligned, tracks.aligned]), np.concatenate([probes.labels, tracks.labels]),
                   np.concatenate([probes.genuine_similarity, tracks.genuine_similarity]),
                   {**probes.stats, "track_samples": tracks.stats},
                   np.concatenate([probes.identities, tracks.identities]))
