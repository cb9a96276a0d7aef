"""One run of the real `edge.pipeline.Pipeline` over every clip (one stream each), received over ZeroMQ.

The pipeline binds its XPUB on a free loopback port; a SUB socket (edge.subscribe) connects
first and retries every 10 ms, as the demo does, so no message is missed. The observer records
every offer to a track. Each message's stream time of arrival is the index of the stream's last
detected frame when it arrived: the detected-frame count (faceedge_frames_processed_total) times
the detection stride (a file's interval is fixed), mapped to that frame's timestamp. The files run
at decode speed, and this clock says how far into the stream the message came, whatever the
machine's speed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import zmq

from faceedge.edge.config import load_config
from faceedge.edge.pipeline import Pipeline
from faceedge.edge.wire import decode_message
from faceedge.edge.subscribe import connect, receive
from faceedge.edge.testing_rtsp import free_port


@dataclass
class Offer:
    track: tuple[str, object]  # (stream, tracker key)
    track_id: int | None
    frame_index: int
    bbox: np.ndarray


@dataclass
class Message:
    meta: dict
    face: bytes
    original: bytes | None
    stream_frame: int  # index of its stream's last detected frame when it arrived


@dataclass
class RunResult:
    messages: list[Message] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    sent: int = 0  # faces the pipeline counted as published
    status: int = 0


class OfferLog:
    def __init__(self):
        self.offers: list[Offer] = []

    def offered(self, stream, track_key, track_id, candidate, score) -> None:
        self.offers.append(Offer((stream, track_key), track_id, candidate.frame_index,
                                 np.asarray(candidate.detection.bbox, float).copy()))


class Collector:
    """The `saver` edge.subscribe.receive hands each message to."""

    def __init__(self, metrics):
        self.metrics = metrics
        self.messages: list[Message] = []

    def save(self, parts: list[bytes]) -> dict:
        message = decode_message(parts)
        stream = message.meta["stream"]
        processed = int(self.metrics.value("faceedge_frames_processed_total", stream=stream))
        stride = int(self.metrics.value("faceedge_detect_interval", stream=stream)) + 1
        self.messages.append(Message(message.meta, message.face_jpeg, message.original_jpeg,
                                     (processed - 1) * stride))
        return message.meta


def run_pipeline(streams: list[dict], config_file, overrides: list[str]) -> RunResult:
    """`streams`: [{"id", "url"}]; `overrides`: --set KEY=VALUE for this configuration."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    config = load_config(config_file, [*overrides, f"publish.bind={endpoint}", "metrics.enabled=false"],
                         {"streams": streams})
    log = OfferLog()
    pipeline = Pipeline(config, observer=log)
    collector = Collector(pipeline.metrics)
    subscriber = connect(endpoint, context=zmq.Context.instance())
    subscriber.setsockopt(zmq.RECONNECT_IVL, 10)
    done = threading.Event()
    receiver = threading.Thread(target=receive, args=(subscriber, collector, None, None, done.is_set), daemon=True)
    receiver.start()
    status = pipeline.run()
    done.set()
    receiver.join()
    subscriber.close()
    sent = int(sum(pipeline.metrics.published(s["id"]) for s in streams))
    return RunResult(collector.messages, log.offers, sent, status)
