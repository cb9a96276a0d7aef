"""Collect inference requests from many threads into one batched call.

Each request is an array whose first axis holds one or more items (all face crops of one
frame, or one frame for the detector). A worker thread waits for the first request, then
keeps collecting until `max_batch` items are queued or `max_wait_s` has passed since that
first request, runs `infer` once on the concatenation, and hands each caller back its own
rows of every output. A request larger than `max_batch` runs on its own.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable

import numpy as np

Infer = Callable[[np.ndarray], list[np.ndarray]]


class Batcher:
    def __init__(self, infer: Infer, max_batch: int = 32, max_wait_s: float = 0.005, name: str = "batcher"):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.infer = infer
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.batches_run = 0
        self._queue: queue.Queue = queue.Queue()
        self._held: tuple[np.ndarray, Future] | None = None
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._loop, name=name, daemon=True)
        self._worker.start()

    def submit(self, items: np.ndarray) -> Future:
        """Queue `items` (N, ...); the future resolves to this request's rows of each output."""
        if self._closed.is_set():
            raise RuntimeError("batcher is closed")
        future: Future = Future()
        self._queue.put((np.asarray(items), future))
        return future

    def __call__(self, items: np.ndarray) -> list[np.ndarray]:
        return self.submit(items).result()

    def close(self) -> None:
        self._closed.set()
        self._queue.put(None)
        self._worker.join()

    def _next(self, timeout: float | None):
        if self._held is not None:
            held, self._held = self._held, None
            return held
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _collect(self) -> list[tuple[np.ndarray, Future]] | None:
        first = self._next(None)
        if first is None:
            return None
        requests, count = [first], len(first[0])
        deadline = time.monotonic() + self.max_wait_s
        while count < self.max_batch:
            try:
                request = self._next(deadline - time.monotonic())
            except queue.Empty:
                break
            if request is None:  # closing: run what we have, then stop
                self._queue.put(None)
                break
            if count + len(request[0]) > self.max_batch:
                self._held = request  # starts the next batch, keeps this one under the cap
                break
            requests.append(request)
            count += len(request[0])
        return requests

    def _loop(self) -> None:
        while True:
            requests = self._collect()
            if requests is None:
                return
            sizes = [len(items) for items, _ in requests]
            try:
                outputs = self.infer(np.concatenate([items for items, _ in requests]))
                self.batches_run += 1
            except Exception as exc:  # every caller of this batch sees the error
                for _, future in requests:
                    future.set_exception(exc)
                continue
            offsets = np.cumsum([0, *sizes])
            for (_, future), start, stop in zip(requests, offsets[:-1], offsets[1:]):
                future.set_result([out[start:stop] for out in outputs])
