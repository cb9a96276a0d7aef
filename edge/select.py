"""Best-face selection: a scorer rates face candidates, a per-track state keeps the best.

A `Scorer` takes a batch of candidates and returns one float per candidate, higher is
better. Scorers are chosen in config (`select.scorer`) through `make_scorer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import cv2
import numpy as np
from scipy.special import expit

from .detect import Detection
from .face_input import LOGIT_OUTPUT, FaceInput

# metadata_props key of a learned model: the recogniser (edge.recognizers spec name) whose labels it learned.
TRAINED_FOR_KEY = "faceedge.recognizer"


@dataclass
class Candidate:
    """One face in one frame, ready to be scored."""

    aligned: np.ndarray  # ArcFace-aligned face, BGR uint8, size x size
    detection: Detection  # in source-frame pixels
    frame_shape: tuple[int, int]  # source (height, width)
    frame_index: int = 0
    pts_s: float | None = None
    context: np.ndarray | None = None  # face with margin, cut from the full-resolution frame
    wall: float = 0.0  # Unix time the frame was decoded
    context_origin: tuple[int, int] = (0, 0)  # top-left of `context` in the source frame

    def touches_edge(self, margin: int) -> bool:
        x1, y1, x2, y2 = self.detection.bbox
        height, width = self.frame_shape
        return x1 < margin or y1 < margin or x2 > width - margin or y2 > height - margin


class Scorer(Protocol):
    name: str
    version: str

    def score(self, candidates: Sequence[Candidate]) -> np.ndarray: ...


def laplacian_variance(image: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


class HeuristicScorer:
    """Hand-made score in the spirit of Frigate's face scoring.

    score = detector score x size term x sharpness term, where
    - size term = min(1, shorter box side / `full_size_px`): bigger faces carry more detail;
    - sharpness term = v / (v + `blur_knee`), v the Laplacian variance of the aligned face,
      so blurred faces are penalised smoothly and very sharp ones saturate near 1.
    Faces touching the frame edge are rejected by the track state, not here (see BestFace).
    """

    name = "heuristic"
    version = "1"

    def __init__(self, full_size_px: float = 112.0, blur_knee: float = 100.0):
        self.full_size_px = full_size_px
        self.blur_knee = blur_knee

    def score(self, candidates: Sequence[Candidate]) -> np.ndarray:
        scores = np.empty(len(candidates), dtype=np.float32)
        for i, cand in enumerate(candidates):
            size_term = min(1.0, cand.detection.size / self.full_size_px)
            variance = laplacian_variance(cand.aligned)
            scores[i] = cand.detection.score * size_term * variance / (variance + self.blur_knee)
        return scores


class LearnedScorer:
    """An ONNX face scorer (selection or quality model) run through a trt_engines backend.

    The model takes `face_input(aligned faces)` (N, 3, S, S) and returns one score per face
    (for the selection model, the probability that SFace identifies the face correctly). A model
    whose output is named `logit` gives logits, and the sigmoid is taken here in float64: good faces
    then keep distinct scores (a float32 sigmoid is 1.0 from logit ~17, a float16 one from ~8.3).
    `version` is the short sha256 of the model file, so published faces name the exact model;
    `trained_for` the recogniser the model learned to predict (its metadata, `TRAINED_FOR_KEY`), or None
    when the file does not say.
    """

    def __init__(self, name: str, model: str, face_input: FaceInput, inference=None, backend=None):
        from faceedge.trt_engines.models import input_spec, metadata_props, open_model, output_names

        from .config import InferenceConfig
        from .errors import ModelFileError
        from .model_files import resolve_model, sha256_file

        path = resolve_model(model)
        if isinstance(face_input, FaceInput):
            try:
                _, item = input_spec(path)
            except ValueError:  # free height and width: any face size goes
                item = None
            if item is not None and item[1:] != (face_input.size, face_input.size):
                raise ModelFileError(
                    f"{name} model {path}: takes {item[1]}x{item[2]} faces but the {name} scorer feeds "
                    f"{face_input.size}x{face_input.size}; retrain it with this version's `faceedge train {name}`")
        self.name = name
        self.version = sha256_file(path)[:12]
        self.face_input = face_input
        self.backend = backend or open_model(name, inference or InferenceConfig(), ref=model)
        self.input_name = self.backend.input_names[0]
        self.gives_logits = output_names(path)[0] == LOGIT_OUTPUT
        self.trained_for = metadata_props(path).get(TRAINED_FOR_KEY)

    def score(self, candidates: Sequence[Candidate]) -> np.ndarray:
        if not candidates:
            return np.empty(0, dtype=np.float64)
        blob = self.face_input([cand.aligned for cand in candidates])
        scores = self.backend.run({self.input_name: blob})[0].reshape(len(candidates)).astype(np.float64)
        return expit(scores) if self.gives_logits else scores


class DetectorScorer:
    """The detector's own confidence: the baseline a learned scorer must beat."""

    name = "detector"
    version = "1"

    def score(self, candidates: Sequence[Candidate]) -> np.ndarray:
        return np.array([cand.detection.score for cand in candidates], dtype=np.float64)


# Scorers that run the model of the same role (`trt_engines.model_registry`), named by `select.scorer`.
LEARNED_SCORERS = ("selection", "quality")


def make_scorer(config, inference=None) -> Scorer:
    """Build the scorer named by `select.scorer` (a `SelectConfig`), on the `inference` section's backend."""
    if config.scorer == "heuristic":
        return HeuristicScorer()
    if config.scorer == "detector":
        return DetectorScorer()
    if config.scorer in LEARNED_SCORERS:
        from faceedge.trt_engines.model_registry import MODELS

        model = getattr(config, f"{config.scorer}_model")
        return LearnedScorer(config.scorer, model, MODELS[config.scorer].prepare, inference)
    raise ValueError(f"unknown scorer {config.scorer!r}")


@dataclass
class BestFace:
    """The best candidate a track has seen so far, and what the track looked like."""

    candidate: Candidate | None = None
    score: float = float("-inf")
    rejected: bool = True  # the kept candidate touches the frame edge
    frames_seen: int = 0
    first_pts_s: float | None = None
    last_pts_s: float | None = None
    first_wall: float = 0.0
    last_wall: float = 0.0
    # What was last published for the track (see edge.publish_policy).
    last_published_wall: float | None = None
    sent: Candidate | None = None
    sent_score: float = float("-inf")
    early_sent: bool = False
    # The `leading` best candidates as (not rejected, score, candidate), best first (edge.typical chooses among them).
    leading: int = 1
    leaders: list[tuple[bool, float, Candidate]] = field(default_factory=list)

    def offer(self, candidate: Candidate, score: float, rejected: bool, wall: float) -> bool:
        """Count the sighting; keep the candidate if it beats the current best.

        Unrejected faces always beat rejected ones; a track that only ever touched the
        frame edge still keeps its best edge face, so no track goes unpublished.
        """
        self.frames_seen += 1
        if self.frames_seen == 1:
            self.first_pts_s = candidate.pts_s
            self.first_wall = wall
        self.last_pts_s = candidate.pts_s
        self.last_wall = wall
        entry = (not rejected, float(score), candidate)
        if self.leading > 1 and (len(self.leaders) < self.leading or entry[:2] > self.leaders[-1][:2]):
            at = next((i for i, kept in enumerate(self.leaders) if entry[:2] > kept[:2]), len(self.leaders))
            self.leaders.insert(at, entry)
            del self.leaders[self.leading:]
        if entry[:2] > (not self.rejected, self.score):
            self.candidate, self.score, self.rejected = candidate, float(score), bool(rejected)
            return True
        return False

    def published(self, wall: float, event: str) -> None:
        """The current best went out as `event` at `wall`."""
        self.last_published_wall = wall
        self.sent, self.sent_score = self.candidate, self.score
        self.early_sent = self.early_sent or event == "early"

    def keep(self, candidate: Candidate, score: float, rejected: bool) -> None:
        """Make an earlier candidate the best again (the later one turned out to be someone else); it alone leads."""
        self.candidate, self.score, self.rejected = candidate, float(score), bool(rejected)
        self.leaders = [(not self.rejected, self.score, candidate)] if self.leading > 1 else []

    @property
    def duration_s(self) -> float:
        if self.first_pts_s is not None and self.last_pts_s is not None:
            return max(0.0, self.last_pts_s - self.first_pts_s)
        return max(0.0, self.last_wall - self.first_wall)
