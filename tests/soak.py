"""The soak benchmark: the pipeline on N loopback RTSP streams for M minutes, with an optional server outage.

    .venv/bin/python tests/soak.py --streams 4 --minutes 20 --video clip.mp4 [--restart-at-s S] [--outage-s 5]
                                   [--json OUT] [--set KEY=VALUE ...]

One in-process pipeline reads N streams from one GStreamer RTSP server (each client gets its own
copy of a looped file). At `--restart-at-s` the server is SIGKILLed and restarted on the same port
`--outage-s` later. Stream states and this process's memory are sampled every 0.2 s. The report:
faces published, reconnects and dropped frames per stream, max RSS, RSS growth from minute 2 to
the end, and per stream the seconds from the kill until the stream noticed (it left 'live') and from
the server's return until it was live again.
A benchmark, not a test: it prints what it measured and fails only if the harness itself breaks. It lives
beside the test servers it runs (a source checkout, the Debian packages of `make system-deps`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import av

from faceedge.edge.config import load_config
from faceedge.edge.errors import ConfigError, FaceEdgeError
from faceedge.edge.metrics import Metrics
from testing_rtsp import RtspServer, free_port, looped_copy, missing_tools

log = logging.getLogger("faceedge.soak")

SAMPLE_S = 0.2
GROWTH_FROM_S = 120.0


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def video_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


class Sampler(threading.Thread):
    """Every SAMPLE_S: elapsed seconds, RSS, each stream's state."""

    def __init__(self, metrics: Metrics, started: float, stop: threading.Event):
        super().__init__(name="soak-sampler", daemon=True)
        self.metrics, self.started, self.stop_event = metrics, started, stop
        self.samples: list[tuple[float, int, dict[str, str]]] = []

    def run(self) -> None:
        while not self.stop_event.wait(SAMPLE_S):
            states = {name: info["state"] for name, info in self.metrics.health()["streams"].items()}
            self.samples.append((time.monotonic() - self.started, rss_bytes(), states))


def outage_times(samples, stream: str, down_at: float, back_at: float) -> tuple[float | None, float | None]:
    """(seconds from the kill until the stream left 'live', seconds from the server's return until it was
    live again after that)."""
    left_at = None
    for t, _, states in samples:
        if t < down_at:
            continue
        live = states.get(stream) == "live"
        if left_at is None and not live:
            left_at = t
        elif left_at is not None and live and t >= back_at:
            return round(left_at - down_at, 2), round(t - back_at, 2)
    return (round(left_at - down_at, 2) if left_at is not None else None), None


def run_soak(args) -> int:
    missing = missing_tools()
    if missing:
        raise ConfigError(f"soak needs {', '.join(missing)} (make system-deps)")
    video = Path(args.video)
    if not video.is_file():
        raise ConfigError(f"--video {video}: file not found")
    duration_s = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="faceedge-soak-") as tmp:
        clip_s = video_seconds(video) or 1.0
        # Long enough that no client reaches the end, even one that reconnects late.
        looped = looped_copy(video, Path(tmp) / "looped.mp4", math.ceil((duration_s + 60) / clip_s))
        server = RtspServer(looped, args.port or free_port()).start()
        try:
            config, metrics, samples, down_at, back_at = _soak(args, server, duration_s)
        finally:
            server.stop()
    report = summarise(args, config, metrics, samples, down_at, back_at)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _soak(args, server: RtspServer, duration_s: float):
    from faceedge.edge.pipeline import Pipeline

    streams = [{"id": f"cam{i}", "url": server.url, "transport": "tcp"} for i in range(args.streams)]
    config = load_config(None, args.overrides, {
        "streams": streams, "metrics": {"enabled": False}, "publish": {"bind": "tcp://127.0.0.1:0"}})
    metrics = Metrics()
    pipeline = Pipeline(config, metrics=metrics)
    started = time.monotonic()
    sampling_stop = threading.Event()
    sampler = Sampler(metrics, started, sampling_stop)
    worker = threading.Thread(target=pipeline.run, name="soak-pipeline", daemon=True)
    sampler.start()
    worker.start()
    down_at = back_at = None
    try:
        while (elapsed := time.monotonic() - started) < duration_s and worker.is_alive():
            if args.restart_at_s is not None and down_at is None and elapsed >= args.restart_at_s:
                server.kill()
                down_at = time.monotonic() - started
                log.info("soak: RTSP server killed at %.1fs; back in %.1fs", down_at, args.outage_s)
                time.sleep(args.outage_s)
                server.start()
                back_at = time.monotonic() - started
                log.info("soak: RTSP server back at %.1fs", back_at)
            time.sleep(0.5)
    finally:
        pipeline.stop()
        worker.join(60)
        sampling_stop.set()
        sampler.join()
    return config, metrics, sampler.samples, down_at, back_at


def summarise(args, config, metrics: Metrics, samples, down_at, back_at) -> dict:
    streams = {}
    for stream in (s.id for s in config.streams):
        noticed, recovered = outage_times(samples, stream, down_at, back_at) if back_at else (None, None)
        streams[stream] = {
            "faces_published": int(metrics.published(stream)),
            "reconnects": int(metrics.value("faceedge_reconnects_total", stream=stream)),
            "frames_decoded": int(metrics.value("faceedge_frames_decoded_total", stream=stream)),
            "frames_processed": int(metrics.value("faceedge_frames_processed_total", stream=stream)),
            "frames_dropped": int(metrics.value("faceedge_frames_dropped_total", stream=stream)),
            "publish_dropped": int(metrics.value("faceedge_publish_dropped_total", stream=stream)),
            "outage_noticed_after_s": noticed,
            "live_again_after_s": recovered,
        }
    rss = [r for _, r, _ in samples]
    # From minute 2 (start-up allocations done); a run too short for that uses its second half.
    last = samples[-1][0] if samples else 0
    growth_from = GROWTH_FROM_S if last >= GROWTH_FROM_S + 30 else last / 2
    base = next((r for t, r, _ in samples if t >= growth_from), None)
    end = rss[-1] if rss else None
    return {
        "streams_n": args.streams, "minutes": args.minutes, "video": str(args.video),
        "server_killed_at_s": round(down_at, 1) if down_at else None,
        "server_back_at_s": round(back_at, 1) if back_at else None,
        "max_rss_mb": round(max(rss) / 2**20, 1) if rss else None,
        "rss_growth_from_s": round(growth_from, 1),
        "rss_growth_pct": round(100 * (end - base) / base, 2) if base and end else None,
        "cpu_count": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "streams": streams,
    }


def print_report(report: dict) -> None:
    print(f"soak: {report['streams_n']} streams x {report['minutes']} min, video {report['video']}")
    if report["server_killed_at_s"] is not None:
        print(f"RTSP server killed at {report['server_killed_at_s']} s, back at {report['server_back_at_s']} s")
    print(f"max RSS {report['max_rss_mb']} MB; RSS growth from {report['rss_growth_from_s']} s to the end: "
          f"{report['rss_growth_pct']} %; {report['cpu_count']} CPUs, load average at end "
          f"{report['load_avg_1m_at_end']}")
    header = ("stream", "published", "reconnects", "decoded", "processed", "dropped", "pub_dropped", "noticed_s",
              "live_again_s")
    print(" ".join(f"{h:>12}" for h in header))
    for name, s in report["streams"].items():
        row = (name, s["faces_published"], s["reconnects"], s["frames_decoded"], s["frames_processed"],
               s["frames_dropped"], s["publish_dropped"], s["outage_noticed_after_s"], s["live_again_after_s"])
        print(" ".join(f"{str(v):>12}" for v in row))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tests/soak.py", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4, help="number of RTSP streams (one server, one mount each)")
    parser.add_argument("--minutes", type=float, default=20, help="how long the pipeline runs")
    parser.add_argument("--video", required=True, help="H.264 MP4 served by the loopback RTSP server (looped)")
    parser.add_argument("--restart-at-s", type=float, help="kill the RTSP server at this second, restart it later")
    parser.add_argument("--outage-s", type=float, default=5, help="how long the server stays down")
    parser.add_argument("--port", type=int, help="RTSP port (default: a free one)")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for the pipeline (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.streams < 1 or args.minutes <= 0:
            raise ConfigError("--streams must be >= 1 and --minutes > 0")
        return run_soak(args)
    except FaceEdgeError as exc:
        log.error("%s", exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
