"""Calibration and agreement data: real frames and aligned face crops, split by identity.

Sources are a folder of images (searched recursively) or a video. Frames are sampled
representatively: evenly over a video's length, and evenly over a folder's sorted files.
Faces are found with the float detector and aligned as the pipeline aligns them.

A "track" is a list of crops of one face that the selection model must rank: each face
crop with the degraded views a moving, refocusing, compressed camera stream produces
(blur, down-scaling, JPEG, noise, darkness), so best-face agreement measures the
decision the pipeline actually makes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".ts"}


def split_of(name: str, report_fraction: float = 0.3) -> str:
    """Deterministic split of an identity (never of an image) by a hash of its name: `report_fraction`
    of identities report, the rest fit and choose 5:2."""
    position = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    fit = (1 - report_fraction) * 5 / 7
    if position <= fit:
        return "fit"
    return "choose" if position <= 1 - report_fraction else "report"


def sample_indices(total: int, size: int) -> list[int]:
    if total <= size:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, size)})


def video_frames(path: Path, size: int) -> list[np.ndarray]:
    """`size` frames spread evenly over the video; skipped frames are grabbed, not decoded to images."""
    capture = cv2.VideoCapture(str(path))
    wanted = set(sample_indices(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), size))
    frames, index = [], 0
    while wanted and index <= max(wanted):
        if not capture.grab():
            break
        if index in wanted:
            ok, frame = capture.retrieve()
            if ok:
                frames.append(frame)
        index += 1
    capture.release()
    return frames


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def scale_to(frame: np.ndarray, longer: int) -> np.ndarray:
    scale = longer / max(frame.shape[:2])
    if scale == 1:
        return frame
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def fit_within(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """The frame scaled, aspect kept, to the largest size within height x width: as the pipeline scales a
    frame to the detector's resolution, here to the detector's calibration input."""
    small = scale_to(frame, max(height, width))
    if small.shape[0] > height or small.shape[1] > width:
        small = scale_to(frame, int(max(height, width) * min(height / small.shape[0], width / small.shape[1])))
    return small


def face_crops(frames: list[np.ndarray], detector, input_size: int = 640, size: int = 112,
               min_face: int = 24) -> list[np.ndarray]:
    """Aligned BGR crops of every face the detector finds (box side >= min_face source pixels)."""
    from faceedge.edge.align import align_face

    crops = []
    for frame in frames:
        small = scale_to(frame, input_size)
        scale = frame.shape[1] / small.shape[1]
        for det in detector.detect(small):
            det = det.scaled(scale, scale)
            if det.size >= min_face:
                crops.append(align_face(frame, det.landmarks, size=size))
    return crops


def degraded_views(crop: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The crop and the views of it a live stream produces; order is irrelevant to agreement."""
    h, w = crop.shape[:2]
    views = [crop]
    for sigma in (1.0, 2.5):
        views.append(cv2.GaussianBlur(crop, (0, 0), sigma))
    for factor in (0.5, 0.25):
        small = cv2.resize(crop, (max(1, int(w * factor)), max(1, int(h * factor))), interpolation=cv2.INTER_AREA)
        views.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 15])
    views.append(cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    noise = rng.normal(0, 12, crop.shape)
    views.append(np.clip(crop.astype(np.float32) + noise, 0, 255).astype(np.uint8))
    views.append((crop.astype(np.float32) * 0.45).astype(np.uint8))
    return views


@dataclass
class FaceSet:
    crops: list[np.ndarray] = field(default_factory=list)
    tracks: list[list[int]] = field(default_factory=list)  # indices into crops

    def add_track(self, views: list[np.ndarray]) -> None:
        start = len(self.crops)
        self.crops.extend(views)
        self.tracks.append(list(range(start, start + len(views))))


def grouped_frames(sources: list[Path], size: int, segments: int = 10,
                   keep_identity: Callable[[str], bool] | None = None) -> dict[str, list[np.ndarray]]:
    """Up to `size` frames per source, grouped so that no group straddles two splits.

    Images group by their folder (one identity per folder in a face data set); video frames
    by time segment, since neighbouring frames show the same people. With `keep_identity`, a
    folder source keeps only the images of the identity folders (its sub-folders) it accepts.
    """
    groups: dict[str, list[np.ndarray]] = {}
    for source in map(Path, sources):
        if source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
            frames = video_frames(source, size)
            for i, frame in enumerate(frames):
                groups.setdefault(f"{source.name}#{i * segments // max(1, len(frames))}", []).append(frame)
            continue
        files = image_files(source) if source.is_dir() else [source]
        if keep_identity is not None and source.is_dir():
            files = [f for f in files if f.parent != source and keep_identity(f.relative_to(source).parts[0])]
        for i in sample_indices(len(files), size):
            frame = cv2.imread(str(files[i]))
            if frame is not None:
                groups.setdefault(str(files[i].parent.relative_to(source.parent)), []).append(frame)
    return groups


def identity_groups(sources: list[Path], size: int, identities: str = "all", report_fraction: float = 0.3
                    ) -> tuple[dict[str, list[np.ndarray]], Callable[[str], str]]:
    """The sources' frames by group, and which split each group goes to, for `inference.calibration.identities`:
    "all", every identity (and video segment) by `split_of`; "held_out", only the identities the trainers held out
    (`edge.identity_split`); "trained", the others fit and choose 5:2 and the held-out ones report, so a model
    calibrated this way is judged on people that neither it nor its calibration saw (videos fit and choose)."""
    from faceedge.edge.identity_split import HOLDOUT_FRACTION, holdout_identity

    def held_out(name: str) -> bool:
        return holdout_identity(name, HOLDOUT_FRACTION)

    if identities != "trained":
        groups = grouped_frames(sources, size, keep_identity=held_out if identities == "held_out" else None)
        return groups, lambda group: split_of(group, report_fraction)
    folders = [source for source in sources if source.is_dir()]
    trained = grouped_frames(sources, size, keep_identity=lambda name: not held_out(name))
    report = grouped_frames(folders, size, keep_identity=held_out)
    groups = {**{f"fit:{k}": v for k, v in trained.items()}, **{f"report:{k}": v for k, v in report.items()}}

    def assign(group: str) -> str:
        side, name = group.split(":", 1)
        return "report" if side == "report" else split_of(name, report_fraction=0)

    return groups, assign


@dataclass
class Split:
    frames: list[np.ndarray] = field(default_factory=list)
    faces: FaceSet = field(default_factory=FaceSet)
    groups: list[str] = field(default_factory=list)  # the identities / video segments it holds


def split_sets(groups: dict[str, list[np.ndarray]], detector, max_faces: int = 300, seed: int = 0,
               report_fraction: float = 0.3, assign: Callable[[str], str] | None = None) -> dict[str, Split]:
    """fit / choose / report sets: frames and face tracks, split by group (identity): by `split_of`, or
    by `assign` (group -> split name)."""
    rng = np.random.default_rng(seed)
    splits = {name: Split() for name in ("fit", "choose", "report")}
    assign = assign or (lambda group: split_of(group, report_fraction))
    for group in sorted(groups):
        split = splits[assign(group)]
        split.groups.append(group)
        split.frames.extend(groups[group])
        for crop in face_crops(groups[group], detector):
            if len(split.faces.tracks) < max_faces:
                split.faces.add_track(degraded_views(crop, rng))
    return splits
