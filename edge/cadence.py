"""Which decoded frames of a stream go to detection: one, then `interval` skipped, repeating.

Skipped frames are never converted, cut or scored; norfair's motion prediction carries the
tracks over them (the worker passes the gap to the tracker as norfair's `period`).

Under load a camera-like stream adapts: a frame due for detection that finds the stream's
buffer full widens the interval by one (up to `max_interval`) and is skipped instead of a
queued frame being dropped; once the buffer has not been full for `narrow_after_s`, the
interval narrows by one, never below the configured one. Frames are dropped only at
`max_interval`.
"""

from __future__ import annotations

import time
from typing import Callable


class DetectCadence:
    """Used by the stream's decoder thread only; `interval` may be read from any thread."""

    def __init__(self, interval: int, max_interval: int | None = None, narrow_after_s: float = 5.0,
                 on_change: Callable[[int, str], None] = lambda interval, direction: None,
                 clock: Callable[[], float] = time.monotonic):
        self.base = interval
        self.interval = interval
        # None: fixed (streams that wait for the detector rather than drop frames).
        self.max_interval = interval if max_interval is None else max(interval, max_interval)
        self.narrow_after_s = narrow_after_s
        self.on_change, self.clock = on_change, clock
        self._skipped = interval  # the first frame is detected
        self._last_full = clock()

    def admit(self, buffer_full: bool, elapsed: int = 1) -> bool:
        """True: detect this frame; False: skip it. `elapsed`: frames since the previous decoded one
        (more than 1 when the decoder skipped frames)."""
        now = self.clock()
        self._skipped += elapsed - 1
        if buffer_full:
            self._last_full = now
        elif self.interval > self.base and now - self._last_full >= self.narrow_after_s:
            self._change(self.interval - 1, "narrowed")
            self._last_full = now  # one step per quiet period
        if self._skipped < self.interval:
            self._skipped += 1
            return False
        if buffer_full and self.interval < self.max_interval:
            self._change(self.interval + 1, "widened")
            self._skipped += 1  # == the new interval: the next frame is due
            return False
        self._skipped = 0
        return True

    def _change(self, interval: int, direction: str) -> None:
        self.interval = interval
        self.on_change(interval, direction)
