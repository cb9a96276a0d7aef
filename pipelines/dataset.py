"""Face datasets from a folder of identity subfolders: detect, align, keep frontal faces.

`root/<identity>/*.jpg` -> one `FaceRecord` per photo (its largest face), aligned to the
ArcFace template at a fixed size. Non-frontal faces are dropped with a landmark-based
yaw/pitch estimate (GAN-graded quality method: "remove profile and pitched faces with keypoints"). Splits are
by identity, from a hash of the folder name, so they are stable and never leak images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from faceedge.edge.align import ALIGNED_SIZE, align_face
from faceedge.edge.detect import Detection
from faceedge.edge.face_geometry import estimate_yaw_pitch
from faceedge.edge.identity_split import HOLDOUT_FRACTION, split_identities

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class FrontalFilter:
    """Keep faces whose estimated |yaw| and |pitch| are within these bounds (degrees)."""

    max_yaw_deg: float = 30.0
    max_pitch_deg: float = 25.0

    def accepts(self, landmarks: np.ndarray) -> bool:
        yaw, pitch = estimate_yaw_pitch(landmarks)
        return abs(yaw) <= self.max_yaw_deg and abs(pitch) <= self.max_pitch_deg


@dataclass
class FaceRecord:
    identity: str
    path: Path
    aligned: np.ndarray  # BGR uint8, size x size
    detection: Detection  # in the photo's pixels
    yaw: float
    pitch: float


def identity_folders(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    return sorted(d for d in root.iterdir() if d.is_dir() and any(_images(d)))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def split_folders(root: str | Path, fraction: float = HOLDOUT_FRACTION, salt: str = "faceedge"
                  ) -> tuple[list[str], list[str]]:
    """(train, held-out) identity folder names of `root`, by the shared hash split."""
    from faceedge.edge.errors import ConfigError

    try:
        names = [folder.name for folder in identity_folders(root)]
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    return split_identities(names, fraction, salt)


def identities_on(root: str | Path, side: str, fraction: float = HOLDOUT_FRACTION, salt: str = "faceedge"
                  ) -> tuple[list[str], list[str]]:
    """(the identity folder names of `root` on `side` of the split: "train", "test" (held out) or "all"; every name)."""
    from faceedge.edge.errors import ConfigError

    train, held = split_folders(root, fraction, salt)
    names = sorted(train + held)
    chosen = {"train": train, "test": held, "all": names}[side]
    if not chosen:
        raise ConfigError(f"--data {root}: the {side} split is empty ({len(names)} identities, "
                          f"--holdout-fraction {fraction})")
    return chosen, names


def largest_face(detections: list[Detection]) -> Detection | None:
    return max(detections, key=lambda d: d.size, default=None)


def build_dataset(root: str | Path, detector, size: int = ALIGNED_SIZE, frontal: FrontalFilter | None = FrontalFilter(),
                  identities: list[str] | None = None) -> list[FaceRecord]:
    """One record per photo with a detected (and, with `frontal`, frontal) face.

    `identities` restricts the folders read (e.g. one side of `split_identities`).
    """
    records, dropped = [], {"no_face": 0, "non_frontal": 0}
    wanted = None if identities is None else set(identities)
    photos = [(folder.name, path) for folder in identity_folders(root) if wanted is None or folder.name in wanted
              for path in _images(folder)]
    for identity, path in tqdm(photos, desc=f"detecting faces in {Path(root).name}", unit="photo"):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            log.warning("unreadable image %s", path)
            continue
        detection = largest_face(detector.detect(image))
        if detection is None:
            dropped["no_face"] += 1
            continue
        yaw, pitch = estimate_yaw_pitch(detection.landmarks)
        if frontal is not None and not frontal.accepts(detection.landmarks):
            dropped["non_frontal"] += 1
            continue
        records.append(FaceRecord(identity, path, align_face(image, detection.landmarks, size), detection, yaw, pitch))
    log.info("dataset %s: %d faces kept, dropped %s", root, len(records), dropped)
    return records
