"""`faceedge bench density`: how many real-time cameras one box serves, and what it costs.

Each trial runs N copies of a clip, each played at its frame rate and looped, with buffers that
drop their oldest frame when full, as cameras' do; counters are taken over `seconds` after a
warm-up. A trial keeps real time when no frame was dropped and every stream's decoder kept up
with its clock (a late decoder falls behind rather than dropping, so that is checked too).
Per stream: frames decoded, skipped (between detections, in the decoder or before conversion),
dropped and detected; the detection rate and the interval at the end; latency from a frame's
decoding to the end of its tracking and scoring, and from a published face's frame to the
face's arrival at a subscriber (p50, p95; a best face leaves when its track ends, so the latter
includes the rest of the track's life).

The decode-only ceiling: the same number of decoders running flat out with the pipeline's
thread settings, every frame decoded, in cameras of the clip's frame rate.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import av
import numpy as np

from .config import load_config
from .enhance import make_enhancer
from .metrics import Metrics
from .pipeline import Pipeline, make_detector
from .wire import MessageError, decode_message
from .select import make_scorer
from .source import decoder_thread_count
from .subscribe import connect, receive

# A stream keeps real time when its decoder delivered at least this share of its clock's frames.
REALTIME_SHARE = 0.95


def clip_rate(url: str) -> float:
    with av.open(url) as container:
        video = container.streams.video[0]
        return float(video.average_rate or video.guessed_rate or 25)


def decode_only_fps(url: str, streams: int, seconds: float, decoder_threads: int) -> float:
    """Frames/s of `streams` decoders together, each looping the clip flat out, every frame decoded."""
    counts = [0] * streams
    deadline = time.perf_counter() + seconds

    def decode(slot: int) -> None:
        while time.perf_counter() < deadline:
            with av.open(url) as container:
                video = container.streams.video[0]
                video.thread_type = "AUTO"
                video.codec_context.thread_count = decoder_threads
                for _ in container.decode(video):
                    counts[slot] += 1
                    if time.perf_counter() >= deadline:
                        return

    started = time.perf_counter()
    threads = [threading.Thread(target=decode, args=(slot,), daemon=True) for slot in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "count": 0}
    return {"p50_ms": round(float(np.percentile(values, 50)) * 1e3, 1),
            "p95_ms": round(float(np.percentile(values, 95)) * 1e3, 1), "count": len(values)}


class FaceClock:
    """Subscribes to the pipeline and keeps, per stream, each face's age on arrival: every message's, by event,
    and each track's first message's (what early publish shortens: a `best` is as old as its track)."""

    def __init__(self, endpoint: str):
        self.socket = connect(endpoint)
        self.ages: dict[str, list[float]] = {}
        self.first_ages: dict[str, list[float]] = {}
        self.event_ages: dict[str, list[float]] = {}
        self.seen_tracks: set[tuple[str, int]] = set()
        self.recording = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=receive, args=(self.socket, self, None, None, self._stop.is_set),
                                        name="density-subscriber", daemon=True)
        self._thread.start()

    def save(self, parts: list[bytes]) -> dict | None:
        """`edge.subscribe.receive`'s saver: the face's age from its frame's decoding to now."""
        arrived = time.time()
        try:
            meta = decode_message(parts).meta
        except MessageError:
            return None
        track = (meta["stream"], meta["track_id"])
        first = track not in self.seen_tracks
        self.seen_tracks.add(track)
        if self.recording:
            age = arrived - datetime.fromisoformat(meta["wall_time"]).timestamp()
            self.ages.setdefault(meta["stream"], []).append(age)
            self.event_ages.setdefault(meta["event"], []).append(age)
            if first:
                self.first_ages.setdefault(meta["stream"], []).append(age)
        return meta

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


COUNTERS = {"decoded": "faceedge_frames_decoded_total", "skipped": "faceedge_frames_skipped_total",
            "dropped": "faceedge_frames_dropped_total", "detected": "faceedge_frames_processed_total"}


def run_trial(url: str, streams: int, seconds: float, warmup_s: float, overrides: list[str], models: tuple,
              rate: float, config_path: str | None = None) -> dict:
    """N real-time copies of the clip through the full pipeline; counters over `seconds` after `warmup_s`."""
    cameras = [{"id": f"cam{n}", "url": url, "realtime": True, "loop": True} for n in range(streams)]
    config = load_config(config_path, ["publish.bind=tcp://127.0.0.1:0", "metrics.enabled=false",
                                       "source.drop_policy=drop_oldest", *overrides], {"streams": cameras})
    metrics = Metrics(keep_samples=True)
    detector, scorer, enhancer = models
    pipeline = Pipeline(config, detector=detector, scorer=scorer, enhancer=enhancer, metrics=metrics)
    runner = threading.Thread(target=pipeline.run, name="density-pipeline", daemon=True)
    runner.start()
    while pipeline.publisher is None and runner.is_alive():
        time.sleep(0.01)
    if pipeline.publisher is None:
        raise RuntimeError("the pipeline stopped before it started publishing (see its log)")
    clock = FaceClock(pipeline.publisher.endpoint)
    names = [camera["id"] for camera in cameras]
    try:
        time.sleep(warmup_s)
        before = {name: {key: metrics.value(sample, stream=name) for key, sample in COUNTERS.items()}
                  for name in names}
        for samples in metrics.latency_samples.values():
            samples.clear()
        clock.recording = True
        started = time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - started
        clock.recording = False
        after = {name: {key: metrics.value(sample, stream=name) for key, sample in COUNTERS.items()}
                 for name in names}
        frame_latency = {name: list(metrics.latency_samples.get(name, [])) for name in names}
    finally:
        pipeline.stop()
        runner.join()
        clock.close()
    per_stream = []
    for name in names:
        counts = {key: int(after[name][key] - before[name][key]) for key in COUNTERS}
        # Every frame of the stream's clock was decoded or skipped by the decoder; each was then
        # detected, skipped between detections, or dropped (a few are still in the buffer).
        video_frames = counts["detected"] + counts["skipped"] + counts["dropped"]
        widened = metrics.value("faceedge_detect_interval_changes_total", stream=name, direction="widened")
        narrowed = metrics.value("faceedge_detect_interval_changes_total", stream=name, direction="narrowed")
        per_stream.append({
            "stream": name, **counts,
            "video_fps": round(video_frames / elapsed, 2),
            "detected_fps": round(counts["detected"] / elapsed, 2),
            "detected_share": round(counts["detected"] / video_frames, 3) if video_frames else 0.0,
            "interval_end": int(metrics.value("faceedge_detect_interval", stream=name)),
            "interval_widened": int(widened), "interval_narrowed": int(narrowed),
            "frame_latency": percentiles(frame_latency[name]),
            "publish_latency": percentiles(clock.ages.get(name, [])),
            "first_publish_latency": percentiles(clock.first_ages.get(name, [])),
            "kept_up": video_frames / elapsed >= REALTIME_SHARE * rate,
        })
    dropped = sum(row["dropped"] for row in per_stream)
    return {
        "streams": streams,
        "seconds": round(elapsed, 2),
        "realtime": dropped == 0 and all(row["kept_up"] for row in per_stream),
        "total": {
            **{key: sum(row[key] for row in per_stream) for key in COUNTERS},
            "detected_fps": round(sum(row["detected_fps"] for row in per_stream), 2),
            "frame_latency": percentiles([v for values in frame_latency.values() for v in values]),
            "publish_latency": percentiles([v for values in clock.ages.values() for v in values]),
            "first_publish_latency": percentiles([v for values in clock.first_ages.values() for v in values]),
            "publish_latency_by_event": {event: percentiles(ages) for event, ages in sorted(clock.event_ages.items())},
        },
        "per_stream": per_stream,
    }


def run_density(url: str, streams: int | None = None, seconds: float = 20.0, warmup_s: float = 3.0,
                overrides: list[str] = (), max_streams: int = 32, config_path: str | None = None,
                decode_seconds: float = 5.0, progress=lambda trial: None) -> dict:
    """One trial at `streams`, or trials at 1, 2, ... until one fails to keep real time."""
    config = load_config(config_path, list(overrides))
    models = (make_detector(config), make_scorer(config.select, config.inference),
              make_enhancer(config.enhance, config.inference))
    rate = clip_rate(url)
    trials = []
    for n in ([streams] if streams else range(1, max_streams + 1)):
        trial = run_trial(url, n, seconds, warmup_s, list(overrides), models, rate, config_path)
        trials.append(trial)
        progress(trial)
        if not trial["realtime"]:
            break
    kept = [trial for trial in trials if trial["realtime"]]
    best = kept[-1] if kept else trials[-1]
    decoder_threads = decoder_thread_count(config.source.decoder_threads, best["streams"])
    decode_fps = decode_only_fps(url, best["streams"], decode_seconds, decoder_threads)
    return {
        "input": url,
        "clip_fps": rate,
        "seconds": seconds,
        # With --streams: that N when it kept real time, else None (no search made).
        "max_realtime_streams": kept[-1]["streams"] if kept else (0 if streams is None else None),
        "searched": streams is None,
        "decode_only_streams": best["streams"],
        "decode_only_fps": round(decode_fps, 1),
        "decode_only_max_streams": int(decode_fps // rate),
        "decoder_threads": decoder_threads,
        "per_stream": best["per_stream"],
        "total": best["total"],
        "trials": [{key: trial[key] for key in ("streams", "realtime", "total")} for trial in trials],
    }
