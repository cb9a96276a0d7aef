"""The embedded demo: a moving clip made from face photos that ship inside a required dependency
(scikit-image's sample images), run through the full pipeline, its published faces received by a
real ZeroMQ subscriber and laid out on a contact sheet that shows the choice: per track, an even
sample of the candidates it was offered (seen through the pipeline's observer) with their scores,
and the face it sent."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import zmq

from .clip_writer import write_h264
from .config import load_config
from .pipeline import Pipeline
from .publish import free_port
from .subscribe import FaceSaver, connect, receive

log = logging.getLogger("faceedge.demo")

# Face photos bundled in the scikit-image wheel (skimage/data, read without a download): `astronaut`, Eileen
# Collins, from NASA, public domain; `camera`, CC0 by its photographer, Lav Varshney. Each is cut to head and
# shoulders: (top, bottom, left, right).
PHOTOS = {"astronaut": (0, 300, 90, 360), "camera": (40, 330, 110, 400)}
SIZE = (1280, 720)
FPS = 25


@dataclass
class Actor:
    """One face on the clip's stage: a photo moving from `start` to `end` (its top-left corner, pixels) while its
    scale goes from `scale[0]` to `scale[1]`; `blur` (Gaussian sigma) and `light` (gain) fade to none over the
    clip, so its best frames come late."""

    photo: str
    start: tuple[int, int]
    end: tuple[int, int]
    scale: tuple[float, float]
    mirrored: bool = False
    blur: float = 0.0
    light: float = 1.0


# Four tracks from two photos: each is also shown mirrored, one copy coming into focus, one out of the dark; the
# zooming astronaut leaves the frame on the left, so her last candidates touch the border.
CAST = (
    Actor("astronaut", (60, 200), (-170, 180), (1.2, 1.6)),
    Actor("camera", (860, 20), (620, 20), (1.2, 1.2)),
    Actor("astronaut", (980, 400), (900, 380), (0.9, 0.9), mirrored=True, blur=4.0),
    Actor("camera", (520, 400), (600, 400), (0.9, 0.9), mirrored=True, light=0.35),
)


def sample_image(name: str) -> np.ndarray:
    """A bundled scikit-image photo, cut to head and shoulders, as BGR."""
    from skimage import data

    image = getattr(data, name)()
    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)
    top, bottom, left, right = PHOTOS[name]
    return image[top:bottom, left:right]


def _paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    h, w = image.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = image[y0 - y:y1 - y, x0 - x:x1 - x]


def render_actor(photo: np.ndarray, actor: Actor, t: float) -> tuple[np.ndarray, int, int]:
    """The actor at time t in [0, 1]: its image and top-left corner."""
    scale = actor.scale[0] + (actor.scale[1] - actor.scale[0]) * t
    image = cv2.resize(cv2.flip(photo, 1) if actor.mirrored else photo, None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA)
    if actor.blur and t < 1:
        image = cv2.GaussianBlur(image, (0, 0), actor.blur * (1 - t))
    if actor.light != 1:
        image = cv2.convertScaleAbs(image, alpha=actor.light + (1 - actor.light) * t)
    x = actor.start[0] + (actor.end[0] - actor.start[0]) * t
    y = actor.start[1] + (actor.end[1] - actor.start[1]) * t
    return image, int(x), int(y)


def make_clip(path: Path, seconds: float = 6.0) -> Path:
    """The cast moving over a grey stage; H.264 via PyAV."""
    photos = {name: sample_image(name) for name in PHOTOS}
    width, height = SIZE
    frames = int(seconds * FPS)

    def render():
        for i in range(frames):
            t = i / max(frames - 1, 1)
            canvas = np.full((height, width, 3), 40, np.uint8)
            for actor in CAST:
                _paste(canvas, *render_actor(photos[actor.photo], actor, t))
            yield canvas

    return write_h264(path, render(), FPS, SIZE, crf=20)


@dataclass
class Offer:
    frame_index: int
    score: float
    touches_edge: bool
    face: np.ndarray  # the aligned candidate


class EvenSample:
    """At most `2 * size` items kept at a stride that doubles when full, so what is kept stays evenly
    spread over however many were added; `items()` gives `size` of them, evenly spaced."""

    def __init__(self, size: int):
        self.size, self.stride, self.added, self.kept = size, 1, 0, []

    def add(self, item) -> None:
        if self.added % self.stride == 0:
            self.kept.append(item)
            if len(self.kept) > 2 * self.size:
                self.kept, self.stride = self.kept[::2], self.stride * 2
        self.added += 1

    def items(self) -> list:
        if len(self.kept) <= self.size:
            return list(self.kept)
        return [self.kept[i] for i in np.linspace(0, len(self.kept) - 1, self.size).round().astype(int)]


class CandidateStrips:
    """Pipeline observer: per track, an even sample of the candidates it was offered, with their scores."""

    def __init__(self, per_track: int = 8, edge_margin: int = 2):
        self.per_track, self.edge_margin = per_track, edge_margin
        self.samples: dict = {}  # (stream, tracker key) -> EvenSample of Offer
        self.keys: dict = {}  # (stream, published track id) -> (stream, tracker key)

    def offered(self, stream, track_key, track_id, candidate, score) -> None:
        key = (stream, track_key)
        sample = self.samples.setdefault(key, EvenSample(self.per_track))
        sample.add(Offer(candidate.frame_index, float(score), bool(candidate.touches_edge(self.edge_margin)),
                         candidate.aligned))
        if track_id is not None:
            self.keys[(stream, track_id)] = key

    def strip(self, stream: str, track_id: int) -> list[Offer]:
        key = self.keys.get((stream, track_id))
        return self.samples[key].items() if key in self.samples else []


GREEN, ORANGE, RED, GREY, BLACK = (40, 160, 40), (0, 140, 255), (40, 40, 200), (110, 110, 110), (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(image, text, x, y, colour=BLACK, scale=0.4) -> None:
    cv2.putText(image, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)


def _tile(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC if image.shape[0] < size else cv2.INTER_AREA)


def track_rows(records: list[dict], strips: CandidateStrips) -> list[dict]:
    """One row per published track: its messages in order (the last is current) and its strip, with every
    face it sent placed among the sampled candidates by frame."""
    tracks: dict = {}
    for record in records:
        tracks.setdefault((record["stream"], record["track_id"]), []).append(record)
    rows = []
    for (stream, track_id), sent in sorted(tracks.items()):
        chosen = sent[-1]
        sent_frames = {r["frame_index"]: r for r in sent}
        cells = [{"frame_index": o.frame_index, "score": o.score, "touches_edge": o.touches_edge, "face": o.face}
                 for o in strips.strip(stream, track_id) if o.frame_index not in sent_frames]
        for record in sent:
            cells.append({"frame_index": record["frame_index"], "score": record["score"],
                          "touches_edge": record["edge_rejected"], "record": record})
        cells.sort(key=lambda c: c["frame_index"])
        rows.append({"stream": stream, "track_id": track_id, "sent": sent, "chosen": chosen, "cells": cells})
    return rows


def _read(folder: Path, name: str | None) -> np.ndarray | None:
    return None if name is None else cv2.imread(str(folder / name))


def contact_sheet(rows: list[dict], folder: Path, tile: int = 112, strip_length: int = 12) -> np.ndarray:
    """Per track: the face sent (and, where SR ran, the original beside it), then its candidates over time with
    their scores; green frames the current face, orange faces sent earlier, red-labelled ones touched the border."""
    header, label, gap = 20, 30, 6
    row_h = header + tile + label + gap
    any_sr = any(row["chosen"]["sr_applied"] for row in rows)
    left = (2 if any_sr else 1) * (tile + gap) + 3 * gap
    columns = min(strip_length, max((len(row["cells"]) for row in rows), default=1))
    width = max(left + columns * (tile + gap), 1000)  # at least as wide as a row's header line
    sheet = np.full((max(1, len(rows)) * row_h, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = r * row_h
        chosen, q = row["chosen"], row["chosen"]["quality"]
        events = ", ".join(f"{m['event']} f{m['frame_index']}" for m in row["sent"])
        _text(sheet, f"{row['stream']} #{row['track_id']}  score {chosen['score']:.4f} ({q['score']}/100)  "
                     f"iod {q['iod_px']:.0f}px  box {q['box_px']:.0f}px  yaw {q['yaw_deg']:+.0f}  "
                     f"pitch {q['pitch_deg']:+.0f}  sharp {q['sharpness']:.0f}  luma {q['brightness']:.0f}  "
                     f"{chosen['frames_seen']} frames  sent: {events}", 4, y + 14)
        top = y + header
        files = chosen["files"]
        face = _read(folder, files["face"])
        sheet[top:top + tile, gap:gap + tile] = _tile(face, tile)
        cv2.rectangle(sheet, (gap - 2, top - 2), (gap + tile + 1, top + tile + 1), GREEN, 2)
        _text(sheet, "restored (SR)" if chosen["sr_applied"] else "published", gap, top + tile + 13, GREEN)
        original = _read(folder, files.get("original"))
        if original is not None:
            x = 2 * gap + tile
            sheet[top:top + tile, x:x + tile] = _tile(original, tile)
            _text(sheet, "original", x, top + tile + 13, GREY)
        cells = row["cells"]
        if len(cells) > strip_length:  # keep every face sent, thin the sampled ones
            spare = strip_length - sum("record" in c for c in cells)
            sampled = [c for c in cells if "record" not in c]
            keep = {id(sampled[i]) for i in np.linspace(0, len(sampled) - 1, max(spare, 0)).round().astype(int)}
            cells = [c for c in cells if "record" in c or id(c) in keep]
        for i, cell in enumerate(cells):
            x = left + i * (tile + gap)
            record = cell.get("record")
            image = cell["face"] if record is None else _read(folder, record["files"].get("original",
                                                                                     record["files"]["face"]))
            sheet[top:top + tile, x:x + tile] = _tile(image, tile)
            if record is not None:
                colour = GREEN if record is chosen else ORANGE
                cv2.rectangle(sheet, (x - 2, top - 2), (x + tile + 1, top + tile + 1), colour, 2)
                _text(sheet, record["event"], x, top + tile + 26, colour)
            _text(sheet, f"f{cell['frame_index']} {cell['score']:.4f}", x, top + tile + 13,
                  RED if cell["touches_edge"] else BLACK)
            if cell["touches_edge"]:
                _text(sheet, "edge", x + tile - 30, top + tile + 26, RED)
    return sheet


def run_demo(out: Path, overrides: list[str] = (), seconds: float = 6.0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    clip = make_clip(out / "demo_clip.mp4", seconds)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    config = load_config(None, [f"publish.bind={endpoint}", "metrics.enabled=false", *overrides],
                         {"streams": [{"id": "demo", "url": str(clip)}]})
    faces_dir = out / "faces"
    jsonl = faces_dir / "faces.jsonl"
    if jsonl.exists():
        jsonl.unlink()
    saver = FaceSaver(faces_dir)
    subscriber = connect(endpoint)
    # It connects before the pipeline binds: retry every 10 ms so no early face is missed.
    subscriber.setsockopt(zmq.RECONNECT_IVL, 10)
    done = threading.Event()
    receiver = threading.Thread(target=receive, args=(subscriber, saver, None, None, done.is_set), daemon=True)
    receiver.start()
    strips = CandidateStrips(edge_margin=config.select.edge_margin)
    pipeline = Pipeline(config, observer=strips)
    status = pipeline.run()
    done.set()  # the receiver saves what is still in flight, then returns
    receiver.join()
    subscriber.close()
    records = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    sheet_path = out / "contact_sheet.png"
    rows = track_rows(records, strips)
    cv2.imwrite(str(sheet_path), contact_sheet(rows, faces_dir))
    summary = {"status": status, "clip": str(clip), "faces": len(records), "contact_sheet": str(sheet_path),
               "jsonl": str(jsonl), "tracks": sorted({r["track_id"] for r in records}),
               "rows": [{"track_id": row["track_id"], "sent": [m["event"] for m in row["sent"]],
                         "chosen_frame": row["chosen"]["frame_index"], "chosen_score": row["chosen"]["score"],
                         "sr_applied": row["chosen"]["sr_applied"],
                         "candidates": [[c["frame_index"], round(c["score"], 6), c["touches_edge"]]
                                        for c in row["cells"] if "record" not in c]} for row in rows]}
    log.info("demo: %d faces published from %d tracks; contact sheet %s, log %s", len(records),
             len(summary["tracks"]), sheet_path, jsonl)
    return summary
