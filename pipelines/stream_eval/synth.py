"""Synthetic labelled streams: people cut out of their photos walk over procedural backgrounds.

Each person has an enrolment (gallery) photo kept out of the clip and one or more clip photos.
In a clip a person enters and leaves, approaches the camera (face from about 12 to 200 px), turns
(switches to another of their photos mid-walk), may cross another person's path, is passed over
by an occluding bar and is motion-blurred when fast. Each clip has an exposure drift, its own
x264 crf and a camera switch: a hard cut to a new background and arrangement, where one person of
the first shot may come back. The ground truth is every face's identity, box (the photo's YuNet
box carried through the paste transform) and visibility (the share of that box its own pixels
hold after everyone and everything in front of it was drawn), per frame.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceedge.edge.clip_writer import write_h264
from faceedge.edge.identity_split import split_identities
from faceedge.pipelines.dataset import _images, identity_folders, largest_face

FPS = 25
SIZE = (640, 360)
CROP_MARGIN = 0.7  # the cut-out is the face box grown by this much of its size on each side


@dataclass
class Photo:
    path: str
    face_box: list[float]  # YuNet's box of the photo's largest face, photo pixels


@dataclass
class Person:
    identity: str
    gallery: Photo  # enrolment photo, never shown in a clip
    shown: list[Photo]


@dataclass
class FaceTruth:
    identity: str
    box: list[float]  # [x1, y1, x2, y2] in frame pixels, may reach outside the frame
    visibility: float  # share of the box inside the frame and not covered


@dataclass
class ClipTruth:
    path: str
    fps: int
    size: tuple[int, int]
    crf: int
    cut_frame: int
    people: list[str]
    frames: list[list[FaceTruth]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


def choose_identities(data: Path, split: str, holdout_fraction: float, salt: str = "faceedge") -> list[str]:
    names = [folder.name for folder in identity_folders(data)]
    if split == "all":
        return names
    return split_identities(names, holdout_fraction, salt)[1]


def load_people(data: Path, identities: list[str], count: int, detector, seed: int) -> list[Person]:
    """Up to `count` people (seeded choice) with a detectable gallery photo and at least one other."""
    rng = np.random.default_rng(seed)
    order = [str(name) for name in rng.permutation(sorted(identities))]
    people = []
    for name in order:
        if len(people) >= count:
            break
        photos = _images(Path(data) / name)
        if len(photos) < 2:
            continue
        found = []
        for path in photos[:4]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            face = largest_face(detector.detect(image)) if image is not None else None
            if face is not None and face.size >= 24:
                found.append(Photo(str(path), [float(v) for v in face.bbox]))
        if len(found) >= 2:
            people.append(Person(name, found[0], found[1:]))
    return people


@dataclass
class Walk:
    """One person's appearance in one shot: frames [start, end) of the shot."""

    person: Person
    start: int
    end: int
    path: tuple[tuple[float, float], tuple[float, float]]  # face centre from -> to
    sizes: tuple[float, float]  # face width from -> to (log-interpolated)
    turn: float  # fraction of the walk at which the next photo is shown

    def at(self, frame: int) -> tuple[float, float, float, Photo] | None:
        if not self.start <= frame < self.end:
            return None
        t = (frame - self.start) / max(1, self.end - self.start - 1)
        (x0, y0), (x1, y1) = self.path
        size = float(np.exp(np.log(self.sizes[0]) + t * (np.log(self.sizes[1]) - np.log(self.sizes[0]))))
        photos = self.person.shown
        photo = photos[0] if t < self.turn or len(photos) == 1 else photos[1]
        return x0 + t * (x1 - x0), y0 + t * (y1 - y0), size, photo


def background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A gradient, low-frequency texture and a few blocks (walls, doors, windows)."""
    width, height = size
    a, b = rng.uniform(30, 220, 3), rng.uniform(30, 220, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    image = a * (1 - ramp) + b * ramp + np.zeros((height, width, 3))
    noise = cv2.resize(rng.normal(0, 25, (height // 24, width // 24, 3)), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    image += noise + rng.normal(0, 4, image.shape)
    for _ in range(rng.integers(3, 7)):
        x, y = int(rng.uniform(0, width)), int(rng.uniform(0, height))
        w, h = int(rng.uniform(30, 200)), int(rng.uniform(30, 200))
        cv2.rectangle(image, (x, y), (x + w, y + h), rng.uniform(20, 235, 3).tolist(), -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def plan_shot(people: list[Person], start: int, end: int, rng: np.random.Generator, size: tuple[int, int],
              hand_over: tuple[float, float, float] | None = None) -> list[Walk]:
    """Walks for the people of one shot; the first two cross each other's path.

    The first walk of the first shot lasts until the cut; with `hand_over` (that walk's face centre
    and size at the cut) the second shot opens on its first person at the same place and size, so a
    track that survives the camera switch takes in another person.
    """
    width, height = size
    walks = []
    for index, person in enumerate(people):
        length = end - start
        begin = start + int(rng.uniform(0, 0.25) * length)
        finish = end - int(rng.uniform(0, 0.2) * length)
        leftwards = index % 2 == 1
        y = rng.uniform(0.3, 0.6) * height
        x_from, x_to = (width + 20, rng.uniform(0.1, 0.5) * width) if leftwards else \
            (-20, rng.uniform(0.5, 0.9) * width)
        far, near = rng.uniform(12, 20), rng.uniform(70, 200)
        if index == 0 and hand_over is not None:
            x_from, y, far = hand_over
            begin, x_to, near = start, rng.uniform(0.2, 0.8) * width, max(hand_over[2] * 1.5, near)
        elif index == 0:
            finish = end
        walks.append(Walk(person, begin, finish, ((x_from, y), (x_to, y + rng.uniform(-30, 30))),
                          (far, near), rng.uniform(0.4, 0.7)))
    return walks


class Cutouts:
    """Each photo's face-and-margin crop, read once."""

    def __init__(self):
        self._cache: dict[str, tuple[np.ndarray, tuple[int, int]]] = {}

    def get(self, photo: Photo) -> tuple[np.ndarray, tuple[int, int]]:
        if photo.path not in self._cache:
            image = cv2.imread(photo.path, cv2.IMREAD_COLOR)
            x1, y1, x2, y2 = photo.face_box
            mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
            cx1, cy1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
            cx2, cy2 = min(image.shape[1], int(x2 + mx)), min(image.shape[0], int(y2 + my))
            self._cache[photo.path] = (image[cy1:cy2, cx1:cx2].copy(), (cx1, cy1))
        return self._cache[photo.path]


def feathered_ellipse(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (width // 2, height // 2), (max(1, int(width * 0.42)), max(1, int(height * 0.46))), 0, 0, 360,
                1.0, -1)
    k = max(3, (min(height, width) // 8) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def motion_blur(image: np.ndarray, length: int) -> np.ndarray:
    if length < 2:
        return image
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return cv2.filter2D(image, -1, kernel)


def render_frame(frame: int, walks: list[Walk], bg: np.ndarray, bar_x: float, cutouts: Cutouts) -> tuple[
        np.ndarray, list[FaceTruth]]:
    """One frame: people far to near (smaller faces behind), then the occluding bar."""
    canvas = bg.astype(np.float32)
    height, width = bg.shape[:2]
    owner = np.full((height, width), -1, np.int32)
    placed = []
    for index, walk in enumerate(walks):
        state = walk.at(frame)
        if state is not None:
            placed.append((state[2], index, walk, state))
    boxes = {}
    for _, index, walk, (cx, cy, face_w, photo) in sorted(placed, key=lambda item: item[0]):
        crop, (ox, oy) = cutouts.get(photo)
        fx1, fy1, fx2, fy2 = photo.face_box
        scale = face_w / (fx2 - fx1)
        out_w, out_h = max(2, int(round(crop.shape[1] * scale))), max(2, int(round(crop.shape[0] * scale)))
        scale_x, scale_y = out_w / crop.shape[1], out_h / crop.shape[0]
        piece = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        previous = walk.at(frame - 1) or walk.at(frame + 1)
        speed = abs(cx - previous[0]) if previous is not None else 0.0
        piece = motion_blur(piece, int(round(speed * 0.8)))
        mask = feathered_ellipse(out_h, out_w)
        # Face centre in the piece -> (cx, cy) in the frame.
        face_cx = ((fx1 + fx2) / 2 - ox) * scale_x
        face_cy = ((fy1 + fy2) / 2 - oy) * scale_y
        px, py = int(round(cx - face_cx)), int(round(cy - face_cy))
        boxes[index] = [(fx1 - ox) * scale_x + px, (fy1 - oy) * scale_y + py,
                        (fx2 - ox) * scale_x + px, (fy2 - oy) * scale_y + py]
        x0, y0, x1, y1 = max(0, px), max(0, py), min(width, px + out_w), min(height, py + out_h)
        if x1 <= x0 or y1 <= y0:
            continue
        m = mask[y0 - py:y1 - py, x0 - px:x1 - px, None]
        canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - m) + piece[y0 - py:y1 - py, x0 - px:x1 - px] * m
        owner[y0:y1, x0:x1][m[..., 0] > 0.5] = index
    bar_w = 36
    bx0, bx1 = int(bar_x), int(bar_x) + bar_w
    if bx1 > 0 and bx0 < width:
        canvas[:, max(0, bx0):min(width, bx1)] = (70, 60, 50)
        owner[:, max(0, bx0):min(width, bx1)] = -2
    faces = []
    for index, box in boxes.items():
        x1, y1, x2, y2 = box
        area = max(1e-6, (x2 - x1) * (y2 - y1))
        ix1, iy1, ix2, iy2 = max(0, int(x1)), max(0, int(y1)), min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
        own = float((owner[iy1:iy2, ix1:ix2] == index).sum()) if ix2 > ix1 and iy2 > iy1 else 0.0
        faces.append(FaceTruth(walks[index].person.identity, [round(v, 2) for v in box], round(min(1.0, own / area), 3)))
    return np.clip(canvas, 0, 255).astype(np.uint8), faces


def make_clip(path: Path, first: list[Person], second: list[Person], seed: int, seconds: float, crf: int,
              size: tuple[int, int] = SIZE, fps: int = FPS) -> ClipTruth:
    """Shot one with `first`, a hard cut, shot two with `second`; encoded with libx264 at `crf`."""
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * fps))
    cut = int(frames * rng.uniform(0.45, 0.6))
    opening = plan_shot(first, 0, cut, rng, size)
    at_cut = opening[0].at(cut - 1)
    shots = [(0, cut, opening, background(rng, size)),
             (cut, frames, plan_shot(second, cut, frames, rng, size, at_cut[:3]), background(rng, size))]
    bar_speed = rng.uniform(6, 12)
    exposure_period, exposure_depth = rng.uniform(2.0, 4.0) * fps, rng.uniform(0.15, 0.35)
    names = list(dict.fromkeys(p.identity for p in first + second))
    truth = ClipTruth(str(path), fps, size, crf, cut, names)
    cutouts = Cutouts()
    def render():
        for i in range(frames):
            start, _, walks, bg = shots[0] if i < cut else shots[1]
            bar_x = -60 + ((i - start) * bar_speed) % (size[0] + 120)
            image, faces = render_frame(i, walks, bg, bar_x, cutouts)
            gain = 1.0 + exposure_depth * np.sin(2 * np.pi * i / exposure_period)
            truth.frames.append(faces)
            yield cv2.convertScaleAbs(image, alpha=gain, beta=0)

    write_h264(path, render(), fps, size, crf)
    return truth


def make_clips(people: list[Person], out: Path, seed: int, clips: int, seconds: float) -> list[ClipTruth]:
    """`clips` clips over `people`, each person in one clip; one person of each first shot returns after the cut."""
    out.mkdir(parents=True, exist_ok=True)
    groups = [people[i::clips] for i in range(clips)]
    crfs = (18, 23, 28, 33)
    truths = []
    for index, group in enumerate(groups):
        if not group:
            continue
        split = max(1, (len(group) + 1) // 2)
        first, second = group[:split], group[split:] + group[:1]
        truth = make_clip(out / f"synth_{index:02d}.mp4", first, second, seed * 1000 + index, seconds,
                          crfs[index % len(crfs)])
        truth.save(out / f"synth_{index:02d}.truth.json")
        truths.append(truth)
    return truths


def box_iou(a, b) -> float:
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    iw, ih = max(0.0, min(ax2, bx2) - max(ax1, bx1)), max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def match_truth(faces: list[FaceTruth], box, min_iou: float = 0.4) -> str | None:
    """The identity whose ground-truth box overlaps `box` at IoU >= min_iou with the most of its face visible:
    IoU x visibility. A face hidden behind the one the detector saw can share its place, and even match its box
    better; a face with nothing visible is never the one found."""
    best, best_overlap = None, 0.0
    for face in faces:
        iou = box_iou(face.box, box)
        if iou >= min_iou and iou * face.visibility > best_overlap:
            best, best_overlap = face.identity, iou * face.visibility
    return best

