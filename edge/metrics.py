"""Prometheus metrics (`faceedge_` prefix, `stream` label) and the HTTP endpoint serving
`/metrics` and `/healthz` (each stream's state and last error, credentials masked)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from faceedge.trt_engines.info import register_model_info

log = logging.getLogger("faceedge.metrics")

STREAM_STATES = ("connecting", "live", "retrying", "finished", "failed", "stopped")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)


class Metrics:
    """All of faceedge's metrics, in a registry of their own (one per pipeline)."""

    def __init__(self, registry: CollectorRegistry | None = None, keep_samples: bool = False):
        self.registry = registry or CollectorRegistry()
        # Raw stage durations, for `faceedge bench` percentiles (histograms only keep buckets).
        self.samples: dict[str, list[float]] | None = {} if keep_samples else None
        r = self.registry
        self.frames_decoded = Counter("faceedge_frames_decoded_total", "Frames decoded", ["stream"], registry=r)
        self.frames_processed = Counter("faceedge_frames_processed_total", "Frames run through detection and tracking",
                                        ["stream"], registry=r)
        self.frames_dropped = Counter("faceedge_frames_dropped_total",
                                      "Decoded frames discarded because the stream's queue was full", ["stream"],
                                      registry=r)
        self.frames_skipped = Counter("faceedge_frames_skipped_total",
                                      "Decoded frames not detected: between detections (detect.interval)", ["stream"],
                                      registry=r)
        self.detect_interval = Gauge("faceedge_detect_interval", "Frames skipped between detections now", ["stream"],
                                     registry=r)
        self.detect_interval_changes = Counter(
            "faceedge_detect_interval_changes_total",
            "Load-adaptive changes of the detection interval (widened: the buffer was full)", ["stream", "direction"],
            registry=r)
        self.frame_latency = Histogram("faceedge_frame_latency_seconds",
                                       "From a frame's decoding to the end of its tracking and scoring", ["stream"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.packets_skipped = Counter("faceedge_packets_skipped_total",
                                       "Packets the decoder rejected (damaged or cut off), skipped", ["stream"],
                                       registry=r)
        self.faces_detected = Counter("faceedge_faces_detected_total", "Faces found by the detector", ["stream"],
                                      registry=r)
        self.tracks_active = Gauge("faceedge_tracks_active", "Confirmed tracks currently followed", ["stream"],
                                   registry=r)
        self.tracks_ended = Counter("faceedge_tracks_ended_total", "Confirmed tracks that ended", ["stream"],
                                    registry=r)
        self.tracks_below_min_score = Counter(
            "faceedge_tracks_below_min_score_total",
            "Confirmed tracks that ended unpublished: their best score stayed below select.min_score", ["stream"],
            registry=r)
        self.scene_cuts = Counter("faceedge_scene_cuts_total", "Shot cuts detected; each ends every track of its stream",
                                  ["stream"], registry=r)
        self.identity_checks = Counter("faceedge_identity_checks_total",
                                       "Faces the identity check embedded (its cost: one recognizer run each)",
                                       ["stream"], registry=r)
        self.track_splits = Counter("faceedge_track_splits_total",
                                    "Tracks split because a face disagreed with the track's identity", ["stream"],
                                    registry=r)
        self.faces_published = Counter("faceedge_faces_published_total", "Face messages sent", ["stream", "event"],
                                       registry=r)
        self.publish_dropped = Counter("faceedge_publish_dropped_total",
                                       "Face messages ZeroMQ refused at its send high-water mark", ["stream"],
                                       registry=r)
        self.reconnects = Counter("faceedge_reconnects_total", "Attempts to reopen a stream after it failed or ended",
                                  ["stream"], registry=r)
        self.stream_up = Gauge("faceedge_stream_state", "1 for the state each stream is in", ["stream", "state"],
                               registry=r)
        self.stage_seconds = Histogram("faceedge_stage_seconds", "Time spent per frame (or per event) in each stage",
                                       ["stream", "stage"], buckets=LATENCY_BUCKETS, registry=r)
        register_model_info(r)  # faceedge_model_info{model,backend,precision}
        self.streams: dict[str, dict] = {}
        # Raw frame latencies per stream, for `faceedge bench density` percentiles.
        self.latency_samples: dict[str, list[float]] | None = {} if keep_samples else None
        self._lock = threading.Lock()

    def observe(self, stream: str, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stream, stage).observe(seconds)
        if self.samples is not None:
            self.samples.setdefault(stage, []).append(seconds)

    def frame_done(self, stream: str, latency_s: float) -> None:
        self.frames_processed.labels(stream).inc()
        self.frame_latency.labels(stream).observe(latency_s)
        if self.latency_samples is not None:
            self.latency_samples.setdefault(stream, []).append(latency_s)

    def set_detect_interval(self, stream: str, interval: int, direction: str | None = None) -> None:
        """The stream's interval now; `direction` (widened, narrowed) when load changed it."""
        self.detect_interval.labels(stream).set(interval)
        if direction is not None:
            self.detect_interval_changes.labels(stream, direction).inc()
        with self._lock:
            self.streams.setdefault(stream, {"state": "connecting", "last_error": ""})["detect_interval"] = interval

    def value(self, sample: str, **labels) -> float:
        """Current value of one sample, e.g. value("faceedge_reconnects_total", stream="door")."""
        return self.registry.get_sample_value(sample, labels) or 0.0

    def published(self, stream: str) -> float:
        """Face messages sent for `stream`, best and update events together."""
        return sum(self.value("faceedge_faces_published_total", stream=stream, event=event)
                   for event in ("best", "update"))

    def stream_state(self, stream: str, state: str, error: str | None = None) -> None:
        with self._lock:
            info = self.streams.setdefault(stream, {"state": state, "last_error": ""})
            info["state"] = state
            if error:
                info["last_error"] = error
        for known in STREAM_STATES:
            self.stream_up.labels(stream, known).set(1 if known == state else 0)

    def health(self) -> dict:
        with self._lock:
            streams = {name: dict(info) for name, info in self.streams.items()}
        healthy = bool(streams) and all(s["state"] in ("live", "connecting", "finished") for s in streams.values())
        return {"healthy": healthy, "streams": streams}


class MetricsServer:
    """Serves /metrics (Prometheus text format) and /healthz (JSON) on one port."""

    def __init__(self, metrics: Metrics, host: str, port: int):
        registry = metrics.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                    body, status = encoder(registry), 200
                elif path == "/healthz":
                    health = metrics.health()
                    body, status = json.dumps(health).encode(), 200 if health["healthy"] else 503
                    content_type = "application/json"
                else:
                    body, status, content_type = b"not found: try /metrics or /healthz\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # scrapes are not worth a log line each
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> "MetricsServer":
        self.thread.start()
        log.info("metrics on http://%s:%d/metrics", self.httpd.server_address[0], self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
