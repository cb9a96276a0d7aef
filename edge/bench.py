"""`faceedge bench`: decode-only vs full-pipeline frames/s on one input, in one run.

The two modes alternate for `repeats` rounds and each round yields one ratio; the
reported figures are medians, so a burst of load on a shared machine moves one round,
not the result. With `against` overrides, each round also runs the pipeline with them,
right after the base pipeline in even rounds and right before it in odd ones (so neither
side always runs second, on a warmer or busier machine), and the median of their
per-round frames/s ratio says what the change costs.
"""

from __future__ import annotations

import threading
import time

import av
import numpy as np

from .config import load_config
from .metrics import Metrics
from .pipeline import Pipeline
from .source import decoder_thread_count


def decode_only(url: str, frames: int, decoder_threads: int = 0) -> float:
    """Frames/s of plain PyAV decoding with the pipeline's thread settings, looping the input."""
    done = 0
    started = time.perf_counter()
    while done < frames:
        with av.open(url) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            video.codec_context.thread_count = decoder_threads
            for _ in container.decode(video):
                done += 1
                if done >= frames:
                    break
    return done / (time.perf_counter() - started)


def full_pipeline(url: str, frames: int, overrides: list[str]) -> tuple[float, Metrics, int]:
    """Frames/s of decode -> detect -> track -> select -> publish, every frame processed."""
    config = load_config(None, ["publish.bind=tcp://127.0.0.1:0", "metrics.enabled=false",
                                "source.drop_policy=block", *overrides],
                         {"streams": [{"id": "bench", "url": url, "loop": True}]})
    metrics = Metrics(keep_samples=True)
    pipeline = Pipeline(config, metrics=metrics)
    def processed() -> float:
        return metrics.value("faceedge_frames_processed_total", stream="bench")

    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    while processed() < 1 and runner.is_alive():
        time.sleep(0.02)
    started, first = time.perf_counter(), processed()
    while processed() < first + frames and runner.is_alive():
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    counted = int(processed() - first)
    pipeline.stop()
    runner.join()
    return counted / elapsed, metrics, counted


def run_bench(url: str, frames: int = 300, overrides: list[str] = (), repeats: int = 3,
              against: list[str] = ()) -> dict:
    config = load_config(None, list(overrides))
    decoder_threads = decoder_thread_count(config.source.decoder_threads, 1)  # what the pipeline gives one stream
    rounds, samples, counted = [], {}, 0
    sides = {"base": list(overrides)}
    if against:
        sides["against"] = [*overrides, *against]
    for index in range(repeats):
        decode_fps = decode_only(url, frames, decoder_threads)
        order = list(sides)[::-1] if index % 2 else list(sides)
        runs = {side: full_pipeline(url, frames, sides[side]) for side in order}
        pipeline_fps, metrics, frames_timed = runs["base"]
        row = {"decode_only_fps": round(decode_fps, 1), "pipeline_fps": round(pipeline_fps, 1),
               "ratio": round(pipeline_fps / decode_fps, 3)}
        if against:
            against_fps = runs["against"][0]
            row.update(against_fps=round(against_fps, 1), against_ratio=round(against_fps / pipeline_fps, 3),
                       against_first=order[0] == "against")
        rounds.append(row)
        counted += frames_timed
        for stage, values in metrics.samples.items():
            samples.setdefault(stage, []).extend(values)
    stages = {
        stage: {"mean_ms": round(float(np.mean(values) * 1e3), 3),
                "p95_ms": round(float(np.percentile(values, 95) * 1e3), 3), "count": len(values)}
        for stage, values in sorted(samples.items())
    }
    median = lambda key: float(np.median([r[key] for r in rounds]))  # noqa: E731
    result = {
        "input": url,
        "frames": counted,
        "repeats": repeats,
        "decode_only_fps": round(median("decode_only_fps"), 1),
        "pipeline_fps": round(median("pipeline_fps"), 1),
        "ratio": round(median("ratio"), 3),
        "rounds": rounds,
        "detector_input_size": config.detect.input_size,
        "decoder_threads": decoder_threads,
        "stages": stages,
    }
    if against:
        ratios = [r["against_ratio"] for r in rounds]
        result.update(against=list(against), against_fps=round(median("against_fps"), 1),
                      against_ratio=round(median("against_ratio"), 3),
                      against_ratio_interval95=[round(v, 3) for v in median_interval(ratios)])
    return result


def median_interval(values: list[float], resamples: int = 4000, seed: int = 0) -> list[float]:
    """95 % bootstrap interval of the median over `values` (the rounds): how far a threshold near the median
    can be trusted, where one round's frames/s scatters by several per cent on a shared host."""
    draws = np.random.default_rng(seed).choice(np.asarray(values, dtype=float), (resamples, len(values)))
    return [float(v) for v in np.percentile(np.median(draws, axis=1), [2.5, 97.5])]
