"""The embedded demo: a moving clip made from face photos that ship inside installed
packages (insightface's sample images), run through the full pipeline, its published
faces received by a real ZeroMQ subscriber and laid out on a contact sheet."""

from __future__ import annotations

import importlib.resources
import json
import logging
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import zmq

from .config import load_config
from .pipeline import Pipeline
from .subscribe import FaceSaver, connect, receive
from .testing_rtsp import free_port

log = logging.getLogger("faceedge.demo")

SAMPLE_IMAGES = ("t1.jpg", "Tom_Hanks_54745.png")
SIZE = (1280, 720)
FPS = 25


def sample_image(name: str) -> np.ndarray:
    path = importlib.resources.files("insightface").joinpath("data", "images", name)
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"insightface sample image {name} is missing or unreadable")
    return image


def _paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    h, w = image.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = image[y0 - y:y1 - y, x0 - x:x1 - x]


def make_clip(path: Path, seconds: float = 6.0) -> Path:
    """A group photo pans and zooms while a portrait walks across; H.264 via PyAV."""
    group, portrait = (sample_image(name) for name in SAMPLE_IMAGES)
    width, height = SIZE
    frames = int(seconds * FPS)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"preset": "veryfast", "crf": "20"}
        for i in range(frames):
            t = i / max(frames - 1, 1)
            canvas = np.full((height, width, 3), 40, np.uint8)
            scale = 1.1 + 0.5 * t
            g = cv2.resize(group, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            _paste(canvas, g, int(40 - 250 * t), int(height - g.shape[0]) // 2)
            p = cv2.resize(portrait, None, fx=1.3, fy=1.3, interpolation=cv2.INTER_AREA)
            _paste(canvas, p, int(width - p.shape[1] - 40 - 200 * t), 30)
            frame = av.VideoFrame.from_ndarray(canvas, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def contact_sheet(records: list[dict], folder: Path, tile: int = 160, columns: int = 6) -> np.ndarray:
    rows = max(1, -(-len(records) // columns))
    sheet = np.full((rows * (tile + 24), columns * tile, 3), 255, np.uint8)
    for i, record in enumerate(records):
        face = cv2.imread(str(folder / record["files"]["face"]))
        r, c = divmod(i, columns)
        y, x = r * (tile + 24), c * tile
        sheet[y:y + tile, x:x + tile] = cv2.resize(face, (tile, tile), interpolation=cv2.INTER_CUBIC)
        label = f"{record['stream']}#{record['track_id']} {record['score']:.2f}"
        cv2.putText(sheet, label, (x + 4, y + tile + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
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
    pipeline = Pipeline(config)
    status = pipeline.run()
    done.set()  # the receiver saves what is still in flight, then returns
    receiver.join()
    subscriber.close()
    records = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    sheet_path = out / "contact_sheet.png"
    cv2.imwrite(str(sheet_path), contact_sheet(records, faces_dir))
    summary = {"status": status, "clip": str(clip), "faces": len(records), "contact_sheet": str(sheet_path),
               "jsonl": str(jsonl), "tracks": sorted({r["track_id"] for r in records})}
    log.info("demo: %d faces published from %d tracks; contact sheet %s, log %s", len(records),
             len(summary["tracks"]), sheet_path, jsonl)
    return summary
